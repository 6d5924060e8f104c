"""Chaos: a fleet with no single point of failure loses any one process.

Two orchestrators on one PostgreSQL, a 3-member NATS broker cluster (MQTT on
JetStream) and three real nodes given both orchestrators' URLs (the set-up and
the steps are in chaos_support). Calls go through both gateways the whole time
while, one at a time, the leading orchestrator, a broker member and a node
are SIGKILLed and another node is SIGSTOPped, each brought back afterwards.
Counted per step: calls that failed until the fleet recovered (only calls
in flight on the lost process: none sent once it was gone) and after (none); then the database and
what each node serves must agree, and a module created at the end still
reaches a node (no control message lost)."""

from __future__ import annotations

import uuid

import pytest

from chaos_support import CLIENTS, ChaosFleet

pytestmark = pytest.mark.slow


def test_the_fleet_survives_losing_any_one_process(tmp_path, postgres):
    fleet = ChaosFleet(tmp_path, postgres.fresh_database(f"chaos_{uuid.uuid4().hex[:8]}")).start()
    try:
        assert fleet.request("POST", "/functions/greet", content=b"Ada").text == "Hello, Ada!"
        with fleet.load():
            steps = [fleet.kill_leader(), fleet.kill_broker_member(), fleet.kill_node(), fleet.pause_node()]
            calls = fleet.calls()
        fleet.late_module_placed()
        fleet.settled()
        print(f"\n{calls} calls through two gateways")
        for step in steps:
            print(step.line())
        leader, broker, killed, paused = steps
        assert [s.after for s in steps] == [[], [], [], []], [s.why for s in steps]
        # only the calls in flight on the lost process fail: none sent once it
        # was gone (exited; or, paused, passed over by the gateways)
        assert [s.late for s in steps] == [[], [], [], []], [s.late for s in steps]
        assert broker.during == [], broker.why
        assert len(leader.during) <= 2 * CLIENTS, leader.why  # its callers', while it died
        assert len(killed.during) <= 2 * CLIENTS and len(paused.during) <= 2 * CLIENTS
        # a paused node gets no new calls once it has been silent a while
        assert paused.note.endswith("20/20 answered"), paused.note
        assert fleet.disagreements() == {}
    finally:
        fleet.stop()
