"""The web console, served by modrun itself (built from ``console/`` into
``static/``; no asset comes from anywhere else). ``mode`` is ``fleet`` on the
orchestrator and ``node`` on ``modrun serve``."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

STATIC = Path(__file__).parent / "static"
TYPES = {".js": "text/javascript", ".css": "text/css", ".map": "application/json"}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-cache",
}


def page(mode: str) -> Response:
    """The console's one HTML page (the client routes every /console/... URL)."""
    index = STATIC / "index.html"
    if not index.is_file():
        return JSONResponse({"error": "the console is not built: cd console && npm ci && npm run build"}, 503)
    html = index.read_text().replace("<body>", f'<body data-mode="{mode}">', 1)
    return HTMLResponse(html, headers=SECURITY_HEADERS)


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or path.suffix not in TYPES or not path.is_file():
        return JSONResponse({"error": f"no console asset {name!r}"}, 404)
    return FileResponse(path, media_type=TYPES[path.suffix], headers=SECURITY_HEADERS)


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")
