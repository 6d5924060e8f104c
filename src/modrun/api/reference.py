"""An OpenAPI document rendered as one HTML page, on the server: no script,
no fonts, nothing fetched from elsewhere, so it works offline."""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 2rem;color:#1b1f24}
h1{margin-bottom:0}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}
section{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0;padding:.4rem 1rem}
.verb{font:bold 13px monospace;padding:.1rem .4rem;border-radius:4px;color:#fff;background:#57606a}
.get{background:#0969da}.post{background:#1a7f37}.delete{background:#cf222e}.put,.patch{background:#9a6700}
code,pre{font:13px/1.4 ui-monospace,monospace}pre{background:#f6f8fa;padding:.5rem;overflow:auto}
table{border-collapse:collapse}td,th{text-align:left;padding:.15rem .8rem .15rem 0;vertical-align:top}
nav a{margin-right:1rem}
"""


def render_reference(doc: dict[str, Any]) -> str:
    """The page: operations grouped by tag, each with its parameters, request
    body and responses, then the named schemas."""
    info = doc.get("info", {})
    by_tag: dict[str, list[tuple[str, str, dict]]] = {}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((method, path, op))
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{escape(info.get('title', 'API'))} reference</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(info.get('title', 'API'))}</h1>",
        f"<p>{escape(info.get('description', ''))} Version {escape(str(info.get('version', '')))}; "
        "the machine-readable document is <a href=/openapi.json>/openapi.json</a>.</p>",
        "<nav>" + "".join(f"<a href='#{_anchor(t)}'>{escape(t)}</a>" for t in by_tag) + "</nav>",
    ]
    for tag, operations in by_tag.items():
        out.append(f"<h2 id='{_anchor(tag)}'>{escape(tag)}</h2>")
        out.extend(_operation(method, path, op) for method, path, op in operations)
    schemas = doc.get("components", {}).get("schemas", {})
    if schemas:
        out.append("<h2 id=schemas>Schemas</h2>")
        for name, schema in schemas.items():
            out.append(
                f"<section id='schema-{escape(name)}'><h3>{escape(name)}</h3>{_json(schema)}</section>"
            )
    out.append("</body></html>")
    return "\n".join(out)


def _operation(method: str, path: str, op: dict[str, Any]) -> str:
    parts = [
        f"<section id='{escape(op.get('operationId', ''))}'>",
        f"<h3><span class='verb {method}'>{method.upper()}</span> <code>{escape(path)}</code></h3>",
        f"<p>{escape(op.get('summary', ''))}</p>",
    ]
    if op.get("description"):
        parts.append(f"<p>{escape(op['description'])}</p>")
    params = op.get("parameters") or []
    if params:
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
            f"<td>{'required' if p.get('required') else ''}</td>"
            f"<td>{escape(p.get('description', ''))}</td></tr>"
            for p in params
        )
        parts.append(f"<table><tr><th>parameter</th><th>in</th><th></th><th></th></tr>{rows}</table>")
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            parts.append(
                f"<p>Request body, <code>{escape(media)}</code>:</p>{_json(content.get('schema', {}))}"
            )
    rows = "".join(
        f"<tr><td><code>{escape(status)}</code></td><td>{escape(response.get('description', ''))}</td>"
        f"<td>{', '.join(f'<code>{escape(m)}</code>' for m in response.get('content', {}))}</td></tr>"
        for status, response in op.get("responses", {}).items()
    )
    parts.append(f"<table><tr><th>status</th><th>meaning</th><th>body</th></tr>{rows}</table></section>")
    return "".join(parts)


def _json(value: Any) -> str:
    return f"<pre>{escape(json.dumps(value, indent=2))}</pre>"


def _anchor(text: str) -> str:
    return escape("".join(c if c.isalnum() else "-" for c in text.lower()))
