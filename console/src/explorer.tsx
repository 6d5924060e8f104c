// The GraphQL explorer (GraphiQL), bundled so it works without internet.
// The page names its endpoint in <body data-endpoint>; requests carry the
// console's header so a signed-in console session is enough on the fleet.
// Subscriptions go over a WebSocket to the same path (graphql-transport-ws),
// opened only when one runs.
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import "graphiql/graphiql.css";
import { createClient } from "graphql-ws";
import { createRoot } from "react-dom/client";

const endpoint = document.body.dataset.endpoint || "/graphql";
const socket = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${endpoint}`;
const fetcher = createGraphiQLFetcher({
  url: endpoint,
  headers: { "x-modrun-console": "1" },
  wsClient: createClient({ url: socket, lazy: true }),
});
createRoot(document.getElementById("explorer")!).render(<GraphiQL fetcher={fetcher} defaultEditorToolbarOpen />);
