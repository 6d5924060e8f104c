"""One decision on the target that runs: a caller refused a function on its
canonical path is refused on every other spelling of it, and through every
content type the node's GraphQL endpoint reads.

A real secured fleet (orchestrator ``--auth basic``, one node joined with a join
token): ``hello`` (greet) and ``textkit`` (reverse) are deployed; the attacker
holds an API key with ``invoke`` on ``hello`` only. Each case first shows the
legitimate path works, then that the variant aimed at ``textkit`` is refused
(403) on the node itself and on the gateway, and that nothing ran: the node's
call counter for ``reverse`` did not move.
"""

from __future__ import annotations

import re

import httpx
import pytest

from control_support import bearer, deployed, secured_fleet
from support import HELLO_AS, TEXTKIT_C

pytestmark = pytest.mark.slow

# spellings of POST /functions/reverse that a router or resolver may read as it
SPELLINGS = [
    "/functions/reverse/",
    "/functions//reverse",
    "/functions/reverse//",
    "/functions/textkit/reverse/",
    "/functions/textkit//reverse",
    "/functions/%72everse",  # percent-encoded 'r': the server decodes it before routing
]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("targets")
    secured = secured_fleet(root / "orch")
    node = secured.node(root / "n1", "n1")
    admin = secured.admin
    try:
        hello = deployed(admin, HELLO_AS, "hello")
        deployed(admin, TEXTKIT_C, "textkit")
        key = admin.create_key("hello-only", artifact_ids=[hello], scopes=["invoke"], expires="1d")
        yield secured.orch.url, node, {"x-api-key": key["api_key"]}, bearer(admin.token)
    finally:
        node.stop()
        secured.stop()


def _reverse_calls(node_url: str, admin: dict) -> float:
    """How many times ``reverse`` ran on the node (its Prometheus counter)."""
    text = httpx.get(node_url + "/metrics", headers=admin, timeout=10).text
    found = re.findall(
        r'^modrun_function_calls_total\{[^}]*function="reverse"[^}]*\} ([0-9.e+]+)$', text, re.M
    )
    return sum(float(v) for v in found)


def _post(url: str, headers: dict, body: bytes = b"Ada", **extra: str) -> httpx.Response:
    return httpx.post(url, content=body, headers={**headers, **extra}, timeout=30)


def test_the_key_works_where_it_was_granted(fleet):
    gateway, node, attacker, admin = fleet
    for base in (gateway, node.url):
        assert _post(base + "/functions/greet", attacker).text == "Hello, Ada!"
        assert _post(base + "/functions/greet/", attacker).text == "Hello, Ada!"  # the same function
        assert _post(base + "/functions/reverse", attacker).status_code == 403
    # the counter the other tests read moves when reverse runs
    ran = _reverse_calls(node.url, admin)
    assert _post(node.url + "/functions/reverse", admin).text == "adA"
    assert _reverse_calls(node.url, admin) == ran + 1


@pytest.mark.parametrize("path", SPELLINGS)
def test_other_spellings_of_a_refused_function_are_refused(fleet, path):
    gateway, node, attacker, admin = fleet
    ran = _reverse_calls(node.url, admin)
    for base in (node.url, gateway):
        answer = httpx.post(base + path, content=b"Ada", headers=attacker, timeout=30)
        assert answer.status_code in (403, 404), (base, path, answer.status_code, answer.text)
        assert "adA" not in answer.text
    assert _reverse_calls(node.url, admin) == ran


@pytest.mark.parametrize(
    "body, media_type",
    [
        (b'{ reverse(text: "Ada") }', "application/graphql"),
        (b'{ reverse(text: "Ada") }', "Application/GraphQL; charset=utf-8"),
        (b'{"query": "{ ...f } fragment f on Query { reverse(text: \\"Ada\\") }"}', "application/json"),
        (b'{"query": "{ a: greet(input: \\"x\\") b: reverse(text: \\"Ada\\") }"}', "application/json"),
        (b'{"query": "{ reverse(text: \\"Ada\\") }"}', "text/plain"),
        (b'{"query": "{ reverse(text: \\"Ada\\")', "application/json"),  # unreadable: refused, not waved on
    ],
)
def test_graphql_in_any_shape_is_checked_on_the_node(fleet, body, media_type):
    _gateway, node, attacker, admin = fleet
    ran = _reverse_calls(node.url, admin)
    answer = _post(node.url + "/graphql", attacker, body, **{"content-type": media_type})
    assert answer.status_code == 403, answer.text
    assert "adA" not in answer.text
    assert _reverse_calls(node.url, admin) == ran


def test_graphql_the_key_may_run_still_runs(fleet):
    _gateway, node, attacker, _admin = fleet
    query = b'{ greet(input: "Ada") }'
    raw = _post(node.url + "/graphql", attacker, query, **{"content-type": "application/graphql"})
    assert raw.status_code == 200 and raw.json()["data"] == {"greet": "Hello, Ada!"}, raw.text


def test_unknown_functions_are_not_an_open_door(fleet):
    _gateway, node, attacker, admin = fleet
    # nothing of that name: refused for the key holder, a plain 404 for an admin
    assert _post(node.url + "/functions/nosuch", attacker).status_code == 403
    assert _post(node.url + "/functions/nosuch", admin).status_code == 404
