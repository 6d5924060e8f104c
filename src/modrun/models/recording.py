"""Recording a model invocation: metrics, the access log and the inference history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from modrun.db.history import BatchedWriter, InferenceHistory, plugin_id
from modrun.metrics.node import NodeMetrics
from modrun.models.providers import Inference


class InferenceRecorder:
    """Called for every invocation (from call threads); only queues rows."""

    def __init__(
        self, metrics: NodeMetrics, access_log: BatchedWriter, history: InferenceHistory | None
    ) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.history = history

    def __call__(self, inference: Inference) -> None:
        self.metrics.inference(inference.model, inference.status, inference.duration_ms / 1000)
        request_id = uuid.uuid4()
        started = datetime.fromtimestamp(inference.started_at, UTC)
        self.access_log.record(
            {
                "id": uuid.uuid4(),
                "request_id": request_id,
                "model": inference.model,
                "start_access": started,
                "stop_access": started + timedelta(milliseconds=inference.duration_ms),
                "status": inference.status,
                "error": inference.error,
            }
        )
        if self.history is None:
            return
        caller = inference.caller
        self.history.record(
            {
                "id": request_id,
                "model_hash": inference.model_hash,
                "model_name": inference.model,
                "input": inference.input,
                "output": inference.output,
                "started_at": started,
                "duration_ms": round(inference.duration_ms),
                "plugin_id": plugin_id(caller.build_id) if caller and caller.build_id else None,
                "plugin_build_id": caller.build_id if caller else None,
                "plugin": caller.plugin if caller else None,
                "function": caller.function if caller else None,
                "status": inference.status,
                "error": inference.error,
            }
        )
