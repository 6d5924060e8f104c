"""Invoking manifest models over HTTP: OpenAI-compatible, KServe v1, generic JSON.

* ``openai``: POST the caller's JSON to ``<baseUrl><path>`` (default path
  ``v1/chat/completions``; use ``v1/embeddings`` for embeddings), with
  ``"model": sourceModel`` filled in when the caller left it out.
* ``kserve``: POST to ``http://<model>.<--modelHost>/v1/models/<model>:predict``
  when ``--modelHost`` is set (seed 001), else to the connection's
  ``<baseUrl>v1/models/<sourceModel>:predict``.
* ``generic``: POST the caller's JSON to the connection's endpoint (or
  ``<baseUrl><path>``) and return the JSON answer.

Every attempt has the model's timeout; 429, 5xx and network failures are
retried up to ``retries`` times with exponential backoff (honouring a short
``Retry-After``). Failures become errors for the calling function.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modrun.connections.http import HttpConnections
from modrun.errors import HostFunctionError, RequestRefused
from modrun.manifest.model import EXECUTOR_PROVIDERS, ModelSpec

BACKOFF = 0.2
MAX_RETRY_AFTER = 10.0


@dataclass(frozen=True)
class Caller:
    """Which function invoked a model (recorded with the inference)."""

    plugin: str
    function: str
    build_id: str


@dataclass(frozen=True)
class Inference:
    """One model invocation, as recorded in the inference history."""

    model: str
    model_hash: str
    provider: str
    source_model: str
    input: Any
    output: Any
    started_at: float
    duration_ms: float
    status: str
    error: str | None
    attempts: int
    caller: Caller | None


class ModelInvoker:
    def __init__(
        self,
        models: Mapping[str, ModelSpec],
        http: HttpConnections,
        model_host: str | None = None,
        on_inference: Callable[[Inference], None] | None = None,
        executors: Any = None,
    ) -> None:
        self.models = dict(models)
        self.http = http
        self.model_host = model_host
        self.on_inference = on_inference
        self.executors = executors
        self._hashes: dict[str, tuple[ModelSpec, str]] = {}

    def url(self, name: str, spec: ModelSpec) -> str:
        source = spec.source_model or name
        if spec.provider == "kserve" and self.model_host:
            return f"http://{name}.{self.model_host}/v1/models/{name}:predict"
        target = self.http.targets.get(spec.connection or "")
        if target is None:
            raise HostFunctionError(f"model {name!r}: connection {spec.connection!r} is not available")
        if target.endpoint is not None:
            return target.endpoint
        path = spec.path or {"openai": "v1/chat/completions", "kserve": f"v1/models/{source}:predict"}.get(
            spec.provider, ""
        )
        return (target.base_url or "") + path.lstrip("/")

    def model_hash(self, name: str, spec: ModelSpec) -> str:
        """Identifies a model configuration: provider, source model and where it is
        served. Computed once per spec, not per invocation."""
        cached = self._hashes.get(name)
        if cached is not None and cached[0] is spec:
            return cached[1]
        value = self._hash(name, spec)
        self._hashes[name] = (spec, value)
        return value

    def _hash(self, name: str, spec: ModelSpec) -> str:
        if spec.provider in EXECUTOR_PROVIDERS:
            where = f"{spec.command or ''}@{spec.user or ''}@{spec.host or 'local'}:{spec.workdir or ''}"
        else:
            try:
                where = self.url(name, spec)
            except HostFunctionError:
                where = ""
        return hashlib.sha256(f"{spec.provider}|{spec.source_model}|{where}".encode()).hexdigest()

    def spec(self, name: str) -> ModelSpec:
        spec = self.models.get(name)
        if spec is None:
            known = ", ".join(sorted(self.models)) or "none"
            raise HostFunctionError(f"no model named {name!r} in the manifest (have: {known})")
        return spec

    def inference(
        self,
        name: str,
        spec: ModelSpec,
        payload: Any,
        output: Any,
        started: float,
        duration_ms: float,
        error: str | None,
        attempts: int,
        caller: Caller | None,
    ) -> Inference:
        return Inference(
            name,
            self.model_hash(name, spec),
            spec.provider,
            spec.source_model,
            payload,
            output,
            started,
            duration_ms,
            "error" if error else "ok",
            error,
            attempts,
            caller,
        )

    def invoke(self, name: str, payload: Any, caller: Caller | None = None, record: bool = True) -> Any:
        """The model's whole answer; ``record=False`` leaves the inference for
        the caller to record (a stream records its own when it ends)."""
        spec = self.spec(name)
        if spec.provider == "openai" and isinstance(payload, dict) and spec.source_model:
            payload = {"model": spec.source_model, **payload}
        started = time.time()
        t0 = time.perf_counter()
        output: Any = None
        error: str | None = None
        attempts = 0
        try:
            if spec.provider in EXECUTOR_PROVIDERS:
                executor = self.executors.get(name) if self.executors is not None else None
                if executor is None:
                    raise HostFunctionError(f"model {name!r} is not running (see the node's log)")
                attempts = 1
                output = executor.invoke(payload)
                return output
            url = self.url(name, spec)
            # --modelHost URLs are the operator's own configuration, not a plugin's request
            checked = not (spec.provider == "kserve" and self.model_host)
            output, attempts = self._post(name, spec, url, json.dumps(payload).encode(), checked)
            return output
        except HostFunctionError as exc:
            error = str(exc)
            raise
        finally:
            if self.on_inference is not None and record:
                duration = (time.perf_counter() - t0) * 1000
                self.on_inference(
                    self.inference(name, spec, payload, output, started, duration, error, attempts, caller)
                )

    def _post(self, name: str, spec: ModelSpec, url: str, body: bytes, checked: bool) -> tuple[Any, int]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        last = ""
        for attempt in range(spec.retries + 1):
            delay = BACKOFF * (2**attempt) * (0.5 + random.random())
            try:
                result = self.http.request("POST", url, headers, body, spec.timeout, checked=checked)
            except RequestRefused:
                raise
            except HostFunctionError as exc:
                last = str(exc)
            else:
                if result.status < 400:
                    try:
                        return json.loads(result.body), attempt + 1
                    except ValueError:
                        raise HostFunctionError(
                            f"model {name!r}: answer is not JSON (HTTP {result.status})"
                        ) from None
                excerpt = result.body[:300].decode("utf-8", "replace")
                last = f"HTTP {result.status}: {excerpt}"
                if result.status != 429 and result.status < 500:
                    raise HostFunctionError(f"model {name!r} failed: {last}")
                retry_after = result.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    delay = min(float(retry_after), MAX_RETRY_AFTER)
            if attempt < spec.retries:
                time.sleep(delay)
        raise HostFunctionError(f"model {name!r} failed after {spec.retries + 1} attempts: {last}")
