"""The fleet's read routes follow permissions: a user sees the modules and
functions of artifacts they may Read, and nothing of anyone else's.

A real secured fleet with one node; Alice signs up and deploys her own plugin,
Bob signs up too. Bob lists modules and functions, asks for Alice's module and
its output by uuid: none of it is there for him (404, as for a module that does
not exist). Alice sees hers; the admin sees everything.
"""

from __future__ import annotations

import json

import httpx
import pytest

from control_support import bearer, deployed, secured_fleet, signed_up
from support import HELLO_AS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("reads")
    secured = secured_fleet(root / "orch")
    node = secured.node(root / "n1", "n1")
    try:
        alice, bob = signed_up(secured.orch.url, "alice"), signed_up(secured.orch.url, "bob")
        deployed(alice, HELLO_AS, "alices-hello")
        yield secured, alice, bob
    finally:
        node.stop()
        secured.stop()


def _get(url: str, token: str, path: str) -> httpx.Response:
    return httpx.get(url + path, headers=bearer(token), timeout=30)


def test_modules_and_functions_are_shown_to_those_who_may_read_them(fleet):
    secured, alice, bob = fleet
    url, admin = secured.orch.url, secured.admin.token
    callers = {"admin": admin, "alice": alice.token, "bob": bob.token}
    modules = {who: _get(url, token, "/api/modules/").json()["results"] for who, token in callers.items()}
    hers = [m for m in modules["admin"] if m["name"] == "alices-hello"]
    assert len(hers) == 1
    module = hers[0]["uuid"]
    assert [m["uuid"] for m in modules["alice"]] == [module]
    assert modules["bob"] == []
    assert _get(url, alice.token, f"/api/modules/{module}/").status_code == 200
    for path in (f"/api/modules/{module}/", f"/api/modules/{module}/output/"):
        assert _get(url, bob.token, path).status_code == 404
    functions = {
        who: {f["name"] for f in _get(url, token, "/api/functions").json()["results"]}
        for who, token in callers.items()
    }
    assert "greet" in functions["admin"] and "greet" in functions["alice"]
    assert "greet" not in functions["bob"]


def _first_events(url: str, token: str) -> dict[str, dict]:
    """The first ``fleet`` and ``calls`` events of ``GET /api/events``."""
    found: dict[str, dict] = {}
    with httpx.stream("GET", url + "/api/events", headers=bearer(token), timeout=30) as stream:
        event = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event:
                found.setdefault(event, json.loads(line.removeprefix("data: ")))
            if {"fleet", "calls"} <= found.keys():
                return found
    raise AssertionError(f"the stream ended with only {sorted(found)}")


def _calls_counted(url: str, token: str) -> float:
    points = _get(url, token, "/api/stats/calls?window=60&step=60").json()["points"]
    return sum(p["calls_per_s"] for p in points)


def test_runtimes_events_and_call_statistics_show_only_what_the_caller_may_read(fleet):
    secured, alice, bob = fleet
    url, admin = secured.orch.url, secured.admin.token
    for _ in range(5):
        answer = httpx.post(url + "/functions/greet", content=b"Ada", headers=bearer(alice.token))
        assert answer.status_code == 200, answer.text
    # the runtime's modules and functions
    listed = {
        who: _get(url, t, "/api/runtimes/").json()["results"][0]
        for who, t in (("admin", admin), ("alice", alice.token), ("bob", bob.token))
    }
    assert (
        len(listed["admin"]["children"]) == 1 and listed["alice"]["children"] == listed["admin"]["children"]
    )
    assert listed["bob"]["children"] == []
    node = listed["admin"]["uuid"]
    full = {
        who: _get(url, t, f"/api/runtimes/{node}/").json()
        for who, t in (("admin", admin), ("alice", alice.token), ("bob", bob.token))
    }
    assert full["admin"]["metadata"]["url"].startswith("http://")
    for who in ("alice", "bob"):  # where the node is and what it runs on are the operator's
        assert "metadata" not in full[who] and "platform" not in full[who]
    assert "greet" in {f["name"] for f in full["alice"]["functions"]}
    assert full["alice"]["functions"] == [f for f in full["admin"]["functions"] if f.get("module")]
    assert full["bob"]["functions"] == [] and full["bob"]["children"] == []
    # the fleet's traffic: Bob counts none of Alice's calls
    assert _calls_counted(url, admin) > 0 and _calls_counted(url, alice.token) > 0
    assert _calls_counted(url, bob.token) == 0
    # the live stream the console reads
    seen = {
        who: _first_events(url, t)
        for who, t in (("admin", admin), ("alice", alice.token), ("bob", bob.token))
    }
    assert seen["admin"]["fleet"]["modules"] == seen["alice"]["fleet"]["modules"] == {"alive": 1}
    assert seen["bob"]["fleet"]["modules"] == {}
    bobs_view = seen["bob"]["fleet"]["runtimes"][0]
    assert bobs_view["modules"] == 0 and bobs_view["functions"] == 0 and "url" not in bobs_view
    assert seen["admin"]["fleet"]["runtimes"][0]["url"].startswith("http://")
