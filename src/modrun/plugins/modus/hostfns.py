"""The Modus host functions modrun provides, with the policies of its Extism
side: models and connections come from the node's manifest (the same
services, allow-lists and inference history), logs go to the call's logs.

Each takes the running call and its arguments already decoded (strings,
numbers, dicts for classes) and returns a Python value the codec writes as
the import's declared result type.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from importlib import resources
from typing import Any
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError

from modrun.errors import HostFunctionError
from modrun.models.providers import Caller
from modrun.plugins.modus.instance import HostImpl, ModusCall, abort


def log_message(call: ModusCall, args: list[Any]) -> None:
    level, message = args
    call.log(str(level or "info"), str(message or ""))


def time_in_zone(call: ModusCall, args: list[Any]) -> str | None:
    """Now in the zone (RFC 3339, nanosecond field as Modus gives it); None for
    an unknown zone (logged, as Modus does)."""
    zone = args[0] or "UTC"
    try:
        now = datetime.now(UTC).astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        call.log("error", f"unknown time zone {zone!r}")
        return None
    return now.isoformat()


def time_zone_data(call: ModusCall, args: list[Any]) -> bytes | None:
    """The zone's TZif file (the only format Modus knows); None, and an error
    log, for an unknown zone or format. The name is checked as an IANA key
    first, so it cannot reach outside the zone database."""
    zone, form = (str(a or "") for a in args)
    if form != "tzif":
        call.log("error", f"unsupported time zone format {form!r} (only 'tzif')")
        return None
    data = tzif(zone)
    if data is None:
        call.log("error", f"unknown time zone {zone!r}")
    return data


def tzif(zone: str) -> bytes | None:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    for root in TZPATH:
        path = os.path.realpath(os.path.join(root, zone))
        if path.startswith(os.path.realpath(root) + os.sep) and os.path.isfile(path):
            with open(path, "rb") as file:
                return file.read()
    try:  # no system database: the tzdata package's
        return resources.files("tzdata.zoneinfo").joinpath(*zone.split("/")).read_bytes()
    except (ModuleNotFoundError, OSError):
        return None


def _services(call: ModusCall) -> Any:
    services = call.services
    if services is None:
        raise HostFunctionError("this node gives plugins no models or connections")
    return services.current


def invoke_model(call: ModusCall, args: list[Any]) -> str | None:
    name, payload = args
    try:
        request = json.loads(payload)
    except (TypeError, ValueError):
        raise HostFunctionError(f"model {name!r}: the input is not JSON") from None
    caller = Caller(call.plugin_name, call.state.function, call.build_id)
    return json.dumps(_services(call).models.invoke(name, request, caller))


def model_info(call: ModusCall, args: list[Any]) -> dict:
    name = args[0]
    spec = _services(call).models.models.get(name)
    if spec is None:
        raise HostFunctionError(f"no model named {name!r} in the manifest")
    return {"name": name, "fullName": spec.source_model or name}


def secret_value(call: ModusCall, args: list[Any]) -> str:
    """An app secret: ``MODRUN_APP_<NAME>`` (or ``MODUS_APP_<NAME>``, as a
    Modus project names it, or ``HYPERMODE_APP_<NAME>``) from the environment,
    the node's env files or its secrets store; a tenant's plugin gets none."""
    name = str(args[0] or "")
    value = _services(call).app_secret(name)
    if value is None:
        raise HostFunctionError(f"secret {name!r} is not set (MODRUN_APP_{name.upper()} or MODUS_APP_{name})")
    return value


def fetch(call: ModusCall, args: list[Any]) -> dict:
    """An HTTP request, through the same allow-list as every plugin's: only
    URLs under a manifest connection, with its headers and secrets added."""
    request = args[0] or {}
    url, method = str(request.get("url") or ""), str(request.get("method") or "GET").upper()
    headers = {}
    for pair in (request.get("headers") or {}).get("data") or []:
        header = pair.get("value") or {}
        if header.get("name"):
            headers[str(header["name"])] = ", ".join(str(v) for v in header.get("values") or [])
    body = base64.b64decode(request.get("body") or "")
    result = _services(call).http.request(method, url, headers, body or None)
    try:
        reason = HTTPStatus(result.status).phrase
    except ValueError:
        reason = ""
    data = [
        {"key": name.lower(), "value": {"name": name, "values": [value]}}
        for name, value in result.headers.items()
    ]
    return {
        "status": result.status,
        "statusText": reason,
        "headers": {"data": data},
        "body": result.body,
    }


def sql_query(call: ModusCall, args: list[Any]) -> dict:
    """A statement on a manifest's PostgreSQL or MySQL connection, in its own
    transaction: the rows as JSON when it returns any, the rows affected
    otherwise. The SDK's ``execute`` prefixes the parameters with ``exec:``
    (no rows wanted). A failed statement is the response's ``error`` (the SDK
    raises it in the guest)."""
    connection, db_type, statement, params_json = (str(a or "") for a in args)
    response: dict[str, Any] = {"error": None, "resultJson": None, "rowsAffected": 0, "lastInsertId": 0}
    sql = _services(call).sql
    kind = sql.kind(connection)
    exec_only = params_json.startswith("exec:")
    params_json = params_json.removeprefix("exec:")
    try:
        if kind is None:
            raise HostFunctionError(f"no SQL connection named {connection!r} in the manifest")
        if db_type and db_type != kind:
            raise HostFunctionError(f"connection {connection!r} is {kind}, not {db_type}")
        params = json.loads(params_json) if params_json.strip() else []
        if not isinstance(params, list):
            raise HostFunctionError("the parameters must be a JSON array")
        result = sql.run(connection, statement, params, False if exec_only else None)
    except (HostFunctionError, ValueError) as exc:
        response["error"] = str(exc)
        return response
    if isinstance(result, list):
        response["resultJson"] = json.dumps(result)
        response["rowsAffected"] = len(result)
    else:
        response["rowsAffected"] = max(0, int(result.get("rowsAffected") or 0))  # DDL: -1
        response["lastInsertId"] = int(result.get("lastInsertId") or 0)
    return response


def graphql_query(call: ModusCall, args: list[Any]) -> str:
    """A GraphQL request (``{"query", "variables"}``) POSTed to a manifest
    connection's ``endpoint``, with its headers and secrets; the answer as
    it came (its ``errors`` also logged)."""
    connection, statement, variables_json = (str(a or "") for a in args)
    http = _services(call).http
    target = http.targets.get(connection)
    if target is None or target.endpoint is None:
        raise HostFunctionError(f"no http connection named {connection!r} with an endpoint in the manifest")
    try:
        variables = json.loads(variables_json) if variables_json.strip() else {}
    except ValueError:
        raise HostFunctionError("the GraphQL variables are not JSON") from None
    payload = json.dumps({"query": statement, "variables": variables}).encode()
    result = http.request("POST", target.endpoint, {"Content-Type": "application/json"}, payload)
    try:
        answer = json.loads(result.body)
    except ValueError:
        raise HostFunctionError(f"{connection}: the answer (HTTP {result.status}) is not JSON") from None
    if isinstance(answer, dict) and answer.get("errors"):
        call.log("error", f"GraphQL errors from {connection}: {json.dumps(answer['errors'])}")
    return result.body.decode("utf-8", "replace")


HOST_FUNCTIONS: Mapping[str, HostImpl] = {
    "env.abort": abort,
    "modus_system.logMessage": log_message,
    "modus_system.getTimeInZone": time_in_zone,
    "modus_system.getTimeZoneData": time_zone_data,
    "modus_models.invokeModel": invoke_model,
    "modus_models.getModelInfo": model_info,
    "modus_secrets.getSecretValue": secret_value,
    "modus_http_client.fetch": fetch,
    "modus_sql_client.executeQuery": sql_query,
    "modus_graphql_client.executeQuery": graphql_query,
}
"""Every import a Modus plugin may have; any other is a load error naming it."""
