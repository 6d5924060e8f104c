"""The SilverLine control protocol as modrun speaks it (docs/orchestrator.md).

Envelope::

    {"object_id": <request id>, "action": "create"|"delete"|"update"|"exited"|"create_batch",
     "type": "req"|"resp", "data": {...}}

Both generations are accepted: ``req``/``resp`` and the older ``arts_req``/
``arts_resp`` (and ``runtime_resp``). Replies use the generation of the request.
Errors go to ``{realm}/proc/log/orchestrator`` as
``{"object_id", "action": "error", "type": "resp", "data": {"desc", "data"}}``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

REQUEST_TYPES = {"req": "resp", "arts_req": "arts_resp"}
RESPONSE_TYPES = {"resp", "arts_resp", "runtime_resp"}

# Module and runtime states (SilverLine's letters).
ALIVE, DEAD, EXITING, KILLED, QUEUED = "A", "D", "E", "K", "Q"
STATES = {ALIVE: "alive", DEAD: "dead", EXITING: "exiting", KILLED: "killed", QUEUED: "queued"}


@dataclass(frozen=True)
class Topics:
    realm: str

    @property
    def reg(self) -> str:
        return f"{self.realm}/proc/reg"

    @property
    def control(self) -> str:
        return f"{self.realm}/proc/control"

    @property
    def keepalive(self) -> str:
        return f"{self.realm}/proc/keepalive"

    @property
    def log(self) -> str:
        return f"{self.realm}/proc/log/orchestrator"

    def runtime_control(self, runtime: str) -> str:
        return f"{self.control}/{runtime}"

    def registration(self, runtime: str) -> str:
        return f"{self.reg}/{runtime}"

    def runtime_keepalive(self, runtime: str) -> str:
        return f"{self.keepalive}/{runtime}"

    def stdout(self, module: str) -> str:
        return f"{self.realm}/proc/stdout/{module}"

    def stderr(self, module: str) -> str:
        return f"{self.realm}/proc/stderr/{module}"


class ProtocolError(Exception):
    """A request the orchestrator refuses; becomes an error message on the log
    topic (and a 4xx answer over REST). ``kind`` is SilverLine's class name."""

    kind = "InvalidArgument"
    status = 400

    def __init__(self, desc: str, data: Any = None) -> None:
        super().__init__(desc)
        self.desc = desc
        self.data = data

    def payload(self) -> dict:
        return {"desc": self.desc, "data": self.data, "kind": self.kind}


class UUIDNotFound(ProtocolError):
    kind = "UUIDNotFound"
    status = 404

    def __init__(self, obj: Any, obj_type: str = "runtime") -> None:
        super().__init__(f"invalid {obj_type} Name/UUID", obj)


class DuplicateUUID(ProtocolError):
    kind = "DuplicateUUID"
    status = 409

    def __init__(self, obj: Any, obj_type: str = "runtime") -> None:
        super().__init__(f"duplicate {obj_type} UUID; request ignored", obj)


class InvalidArgument(ProtocolError):
    kind = "InvalidArgument"

    def __init__(self, name: str, value: Any) -> None:
        super().__init__(f"invalid {name}", value)


class MissingField(ProtocolError):
    kind = "MissingField"

    def __init__(self, *path: str | int) -> None:
        super().__init__("missing field", "/".join(str(p) for p in path))


class FileNotFound(ProtocolError):
    kind = "FileNotFound"
    status = 404

    def __init__(self, path: str) -> None:
        super().__init__("file not found", path)


class NoSuitableRuntime(ProtocolError):
    kind = "NoSuitableRuntime"
    status = 422

    def __init__(self, module: Any) -> None:
        super().__init__("No suitable runtime!", module)


@dataclass
class Message:
    """A decoded control message."""

    topic: str
    object_id: str
    action: str | None
    type: str
    data: Any

    @property
    def is_request(self) -> bool:
        return self.type in REQUEST_TYPES

    @property
    def reply_type(self) -> str:
        return REQUEST_TYPES.get(self.type, "resp")

    def field(self, *path: str) -> Any:
        value: Any = self.data
        walked: list[str | int] = ["data"]
        for key in path:
            walked.append(key)
            if not isinstance(value, dict) or key not in value:
                raise MissingField(*walked)
            value = value[key]
        return value

    def optional(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default) if isinstance(self.data, dict) else default


def decode(topic: str, payload: bytes) -> Message:
    """Parse a payload; raises ProtocolError for anything that is not an envelope."""
    try:
        text = payload.decode("utf-8")
        if text.startswith("'") and text.endswith("'"):  # libsilverline's quoted JSON
            text = text[1:-1]
        body = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("Invalid JSON", payload[:200].decode("utf-8", "replace")) from None
    if not isinstance(body, dict):
        raise InvalidArgument("message", body)
    kind = body.get("type")
    if not isinstance(kind, str):
        raise MissingField("type")
    if kind not in REQUEST_TYPES and kind not in RESPONSE_TYPES:
        raise InvalidArgument("type", kind)
    action = body.get("action")
    if action is not None and not isinstance(action, str):
        raise InvalidArgument("action", action)
    data = body.get("data", {})
    return Message(topic, str(body.get("object_id") or ""), action, kind, data)


def envelope(action: str | None, data: Any, kind: str = "req", object_id: str | None = None) -> dict:
    out: dict[str, Any] = {"object_id": object_id or str(uuid.uuid4())}
    if action is not None:
        out["action"] = action
    out["type"] = kind
    out["data"] = data
    return out


def response(request: Message, details: Any, ok: bool = True) -> dict:
    return envelope(
        request.action,
        {"result": "ok" if ok else "error", "details": details},
        kind=request.reply_type,
        object_id=request.object_id,
    )


def error(exc: ProtocolError) -> dict:
    return envelope("error", exc.payload(), kind="resp")
