"""Keeps resolved secret values out of everything modrun itself prints or returns.

Every resolved secret is registered here; ``scrub`` replaces them with ``***``
in log records (a logging filter on the root handlers), error messages and
call logs sent to clients. Function *output* is data and is not altered.
"""

from __future__ import annotations

import logging
import re
import threading

MIN_LENGTH = 4  # shorter values would redact ordinary text


class Redactor:
    def __init__(self) -> None:
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def set_secrets(self, values: set[str]) -> None:
        keep = frozenset(v for v in values if len(v) >= MIN_LENGTH)
        with self._lock:
            if keep == self._values:
                return
            self._values = keep
            self._pattern = (
                re.compile("|".join(re.escape(v) for v in sorted(keep, key=len, reverse=True)))
                if keep
                else None
            )

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub("***", text)


REDACTOR = Redactor()
"""The process-wide redactor (one node per process)."""


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if REDACTOR._pattern is not None:
            message = record.getMessage()
            cleaned = REDACTOR.scrub(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True
