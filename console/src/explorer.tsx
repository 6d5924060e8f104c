// The GraphQL explorer (GraphiQL), bundled so it works without internet.
// The page names its endpoint in <body data-endpoint>; requests carry the
// console's header so a signed-in console session is enough on the fleet.
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import "graphiql/graphiql.css";
import { createRoot } from "react-dom/client";

const endpoint = document.body.dataset.endpoint || "/graphql";
const fetcher = createGraphiQLFetcher({ url: endpoint, headers: { "x-modrun-console": "1" } });
createRoot(document.getElementById("explorer")!).render(<GraphiQL fetcher={fetcher} defaultEditorToolbarOpen />);
