"""``embedded`` executor: a model that runs inside the node, offline, no key.

Available source models:

* ``vader``: sentiment (VADER, from the ``vadersentiment`` PyPI package, which
  ships its lexicon). Chosen by measurement (docs/decisions/004): 0.6 MB, loads
  in ~0.2 s, ~0.4 ms per text, 8/8 on our sanity set; the MiniLM packages that
  ship weights need PyTorch (GBs) and wordllama fetches its tokenizer from a hub.

Input: ``"text"``, ``{"text": "..."}`` or ``{"texts": [...]}``; output per text:
``{"label": "positive" | "negative" | "neutral", "compound": c, "scores": {...}}``.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from modrun.errors import HostFunctionError

AVAILABLE = ("vader",)
_lock = threading.Lock()


@cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _label(compound: float) -> str:
    return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"


class EmbeddedModel:
    def __init__(self, name: str, source: str) -> None:
        if source not in AVAILABLE:
            raise HostFunctionError(
                f"model {name}: no embedded model {source!r} (available: {', '.join(AVAILABLE)})"
            )
        self.name = name
        self.source = source
        with _lock:
            self._analyzer = _vader()

    def _one(self, text: Any) -> dict[str, Any]:
        if not isinstance(text, str):
            raise HostFunctionError(f"model {self.name}: expected text, got {type(text).__name__}")
        scores = self._analyzer.polarity_scores(text)
        return {
            "label": _label(scores["compound"]),
            "compound": scores["compound"],
            "scores": {"positive": scores["pos"], "negative": scores["neg"], "neutral": scores["neu"]},
        }

    def invoke(self, payload: Any) -> Any:
        if isinstance(payload, dict) and "texts" in payload:
            return [self._one(t) for t in payload["texts"]]
        if isinstance(payload, dict):
            payload = payload.get("text")
        return self._one(payload)

    def ping(self) -> dict[str, Any]:
        return {"healthy": True, "embedded": self.source}

    def close(self) -> None:
        pass
