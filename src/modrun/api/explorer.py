"""The in-browser GraphQL explorer served by ``GET /graphql`` (GraphiQL)."""

from __future__ import annotations

GRAPHIQL_VERSION = "3.8.3"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>modrun explorer</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="stylesheet" href="https://unpkg.com/graphiql@{version}/graphiql.min.css">
  <style>body {{ margin: 0; height: 100vh; }} #explorer {{ height: 100vh; }}</style>
</head>
<body>
  <div id="explorer">Loading the modrun GraphQL explorer (GraphiQL from unpkg.com)...
    <noscript>The explorer needs JavaScript. POST queries to {endpoint} instead.</noscript>
  </div>
  <script crossorigin src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@{version}/graphiql.min.js"></script>
  <script>
    const fetcher = GraphiQL.createFetcher({{ url: "{endpoint}" }});
    ReactDOM.createRoot(document.getElementById("explorer")).render(
      React.createElement(GraphiQL, {{ fetcher, defaultEditorToolbarOpen: true }})
    );
  </script>
</body>
</html>
"""


def explorer_page(endpoint: str = "/graphql") -> str:
    return PAGE.format(version=GRAPHIQL_VERSION, endpoint=endpoint)
