"""The orchestrator's OpenAPI 3.1 document, made from the route tables that
route and guard its requests; schemathesis, signed in as the admin, finds no
5xx and no response that breaks it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from openapi_spec_validator import validate

from control_support import secured_fleet
from openapi_support import failures, schemathesis


def test_the_fleet_api_is_documented_and_holds_to_it(tmp_path: Path, storage: Path):
    fleet = secured_fleet(storage)
    try:
        url = fleet.orch.url
        doc = httpx.get(url + "/openapi.json").json()
        validate(doc)
        ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
        assert ("POST", "/api/v2/artifact/upload/{chunk}") in ops
        assert ("POST", "/functions/{name}") in ops
        assert ops[("GET", "/api/runtimes/")]["security"] == [{"bearer": []}, {"session": []}]
        assert "security" not in ops[("GET", "/health")]
        assert "An admin." in ops[("POST", "/api/v2/user/create")]["description"]
        page = httpx.get(url + "/docs").text
        assert "/api/v2/deploy/{id}/rollback" in page and "<script" not in page

        token = fleet.admin.token
        # the event stream never ends, and logging the admin out would only test 401s from then on
        run = schemathesis(
            url + "/openapi.json", tmp_path, "-H", f"Authorization: Bearer {token}",
            "--exclude-operation-id", "fleet.events", "--exclude-operation-id", "user.logout",
            "--exclude-operation-id", "session.logout", "--max-examples", "5",
        )  # fmt: skip
        assert run.returncode == 0, failures(run)
        tested = re.search(r"Tested: (\d+)", run.stdout)
        assert tested and int(tested.group(1)) >= 60, run.stdout[-3000:]
    finally:
        fleet.stop()
