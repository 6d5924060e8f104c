"""JSON with comments (``//``, ``/* */``) and trailing commas, as manifests allow."""

from __future__ import annotations

import json
import re
from typing import Any

_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/|,(?=\s*[}\]])', re.S)


def strip(text: str) -> str:
    """Blank out comments and trailing commas, keeping line/column positions."""

    def keep(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith('"'):
            return token
        return re.sub(r"[^\n]", " ", token)

    return _TOKEN.sub(keep, text)


def loads(text: str) -> Any:
    return json.loads(strip(text))
