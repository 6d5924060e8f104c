"""A node fails closed: when its control plane cannot be reached, a caller it
has no fresh decision for is refused (503), never let through.

A real secured fleet with one real node serving a deployed plugin; the
orchestrator is killed (SIGKILL) and a caller who was allowed a moment ago
calls the node directly once the node's decision cache has run out.
"""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from control_support import bearer, deployed, secured_fleet, signed_up
from support import HELLO_AS

pytestmark = pytest.mark.slow
DECISION_CACHE = 2.0  # seconds a node keeps a decision (docs/security.md)


def test_a_node_without_its_control_plane_refuses_callers(tmp_path):
    secured = secured_fleet(tmp_path / "orch")
    node = secured.node(tmp_path / "n1", "n1")
    try:
        alice = signed_up(secured.orch.url, "alice")
        deployed(alice, HELLO_AS, "alices-hello")
        bob = signed_up(secured.orch.url, "bob")  # never asked about: no decision cached for him
        call = lambda token: httpx.post(node.url + "/functions/greet", content=b"Ada", headers=bearer(token))  # noqa: E731
        assert call(alice.token).text == "Hello, Ada!"  # the legitimate path
        assert call(bob.token).status_code == 403
        secured.orch.stop(signal.SIGKILL)
        time.sleep(DECISION_CACHE + 0.5)
        for token in (alice.token, bob.token):
            refused = call(token)
            assert refused.status_code == 503, refused.text
            assert "Hello" not in refused.text
    finally:
        node.stop()
        secured.stop()
