// The GraphQL explorer (GraphiQL), bundled so it works without internet.
// The page names its endpoint in <body data-endpoint>; requests carry the
// console's header so a signed-in console session is enough on the fleet.
// Subscriptions go over a WebSocket to the same path (graphql-transport-ws),
// opened only when one runs.
import { createGraphiQLFetcher, type Fetcher } from "@graphiql/toolkit";
import { type DocumentNode, parse } from "graphql";
import { GraphiQL } from "graphiql";
import "graphiql/graphiql.css";
import { createClient } from "graphql-ws";
import { createRoot } from "react-dom/client";

const endpoint = document.body.dataset.endpoint || "/graphql";
const socket = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${endpoint}`;
const base = createGraphiQLFetcher({
  url: endpoint,
  headers: { "x-modrun-console": "1" },
  wsClient: createClient({ url: socket, lazy: true }),
});
// The toolkit picks the WebSocket by the editor's parsed document, which lags
// the text by a moment: a subscription run right after typing went over HTTP.
// Parse what is sent instead.
const fetcher: Fetcher = (params, opts) => {
  let documentAST: DocumentNode | undefined;
  try {
    documentAST = parse(params.query);
  } catch {
    documentAST = undefined;
  }
  return base(params, { ...opts, documentAST: documentAST ?? opts?.documentAST });
};
createRoot(document.getElementById("explorer")!).render(<GraphiQL fetcher={fetcher} defaultEditorToolbarOpen />);
