"""The in-browser GraphQL explorer (GraphiQL), bundled with the console
(``console/src/explorer.tsx``) and served by modrun: it loads nothing from
anywhere else, so it works on a machine without internet."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

from modrun.console import SECURITY_HEADERS

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>modrun GraphQL explorer</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/console/assets/explorer.css">
</head>
<body data-endpoint="{endpoint}" style="margin:0">
  <div id="explorer" style="height:100vh">Loading the GraphQL explorer…
    <noscript>The explorer needs JavaScript. POST queries to {endpoint} instead.</noscript>
  </div>
  <script type="module" src="/console/assets/explorer.js"></script>
</body>
</html>
"""

# GraphiQL and CodeMirror style elements at run time, and its stylesheet carries fonts as data: URLs
EXPLORER_HEADERS = SECURITY_HEADERS | {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; font-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}


def explorer_page(endpoint: str = "/graphql") -> HTMLResponse:
    return HTMLResponse(PAGE.format(endpoint=escape(endpoint, quote=True)), headers=EXPLORER_HEADERS)
