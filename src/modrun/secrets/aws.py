"""Secrets from AWS Secrets Manager (``--useAwsSecrets``).

For a placeholder ``{{NAME}}`` in connection (or plugin) ``SCOPE``, after the
environment and ``.env`` files, modrun reads the secret whose name is
``SCOPE`` (then the name of each model using that connection):

* a JSON object secret (``{"NAME": "value", ...}``) supplies ``NAME``;
* a plain string secret supplies ``{{API_KEY}}`` (seed 001: one secret per
  model holding its key).

Answers are cached for the refresh interval, so a rotated secret takes effect
within one ``--refresh`` without a restart.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence

log = logging.getLogger("modrun.secrets")

_MISSING = object()


class AwsSecrets:
    def __init__(self, ttl: float, client=None) -> None:
        import boto3

        self.client = client or boto3.client("secretsmanager")
        self.ttl = ttl
        self._cache: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()
        self._warned = False

    def _secret(self, secret_id: str) -> object:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(secret_id)
            if cached and now - cached[0] < self.ttl:
                return cached[1]
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            value: object = self.client.get_secret_value(SecretId=secret_id).get("SecretString", _MISSING)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException" and not self._warned:
                log.warning("AWS Secrets Manager: %s", exc.response.get("Error", {}).get("Code"))
                self._warned = True
            value = _MISSING
        except BotoCoreError as exc:
            if not self._warned:
                log.warning("AWS Secrets Manager unavailable: %s", type(exc).__name__)
                self._warned = True
            value = _MISSING
        with self._lock:
            self._cache[secret_id] = (now, value)
        return value

    def lookup(self, scope: str, name: str, models: Sequence[str] = ()) -> str | None:
        for secret_id in (scope, *models):
            value = self._secret(secret_id)
            if value is _MISSING:
                continue
            assert isinstance(value, str)
            try:
                doc = json.loads(value)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                if name in doc:
                    return str(doc[name])
            elif name.upper() == "API_KEY":
                return value
        return None
