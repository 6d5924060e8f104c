"""The chaos test, longer (issue 18): rounds of losses on a fleet with no
single point of failure, under steady calls through both gateways.

Real processes on loopback: a private PostgreSQL, a 3-member NATS cluster
(MQTT on JetStream), two ``modrun orchestrator`` processes and three ``modrun
serve`` nodes (set-up and steps: tests/chaos_support.py). Each round SIGKILLs
the leading orchestrator, a broker member and a node serving a replica, and
SIGSTOPs another node, bringing each back; it prints what each loss cost and,
at the end, whether the database and the nodes agree.

    .venv/bin/python bench/bench_chaos.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from chaos_support import ChaosFleet, Step
from databases import PrivatePostgres


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    postgres = PrivatePostgres()
    postgres.start()
    root = Path(tempfile.mkdtemp(prefix="modrun-chaos-"))
    fleet = ChaosFleet(root, postgres.fresh_database("chaos")).start()
    steps: list[Step] = []
    try:
        with fleet.load():
            for round_ in range(1, args.rounds + 1):
                print(f"round {round_}", flush=True)
                for loss in (fleet.kill_leader, fleet.kill_broker_member, fleet.kill_node, fleet.pause_node):
                    steps.append(loss())
                    print("  " + steps[-1].line(), flush=True)
            calls = fleet.calls()
        fleet.late_module_placed()
        fleet.settled()
        wrong = fleet.disagreements()
    finally:
        fleet.stop()
        postgres.stop()
    print(f"\n{calls} calls through two gateways in {args.rounds} rounds")
    print(f"{'loss':<14} {'recovered (median, max)':>24} {'failed during':>14} {'failed after':>13}")
    for name in dict.fromkeys(s.name for s in steps):
        mine = [s for s in steps if s.name == name]
        took = [s.recovered_in for s in mine]
        print(
            f"{name:<14} {statistics.median(took):>12.2f} s {max(took):>7.2f} s "
            f"{sum(len(s.during) for s in mine):>14} {sum(len(s.after) for s in mine):>13}"
        )
    print(f"database and nodes agree: {wrong if wrong else 'yes'}")


if __name__ == "__main__":
    main()
