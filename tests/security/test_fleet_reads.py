"""The fleet's read routes follow permissions: a user sees the modules and
functions of artifacts they may Read, and nothing of anyone else's.

A real secured fleet with one node; Alice signs up and deploys her own plugin,
Bob signs up too. Bob lists modules and functions, asks for Alice's module and
its output by uuid: none of it is there for him (404, as for a module that does
not exist). Alice sees hers; the admin sees everything.
"""

from __future__ import annotations

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
