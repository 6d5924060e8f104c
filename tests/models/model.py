"""A small model process for the executor tests.

    python model.py [--protocol mer|jsonl] [--ready] [--tokens START,STOP,READY,EXIT]

Input: JSON {"op": ..., "text": ...}. Ops: "upper" (default) answers the text
upper-cased with the process id; "slow" does so after 0.3 s; "stderr" writes
a line to stderr first; "crash" exits with status 3; "hang" never answers;
"sleep" answers after ``ms`` milliseconds; "ping" answers "pong"; "env"
answers the weights version, params and weights file content it was started with.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def answer(request: str) -> str:
    try:
        doc = json.loads(request)
    except ValueError:
        doc = {"text": request}
    if not isinstance(doc, dict):
        doc = {"text": doc}
    op = doc.get("op", "upper")
    if op == "crash":
        print("model: crashing on purpose", file=sys.stderr, flush=True)
        sys.exit(3)
    if op == "hang":
        time.sleep(3600)
    if op == "slow":
        time.sleep(0.3)
    if op == "sleep":
        time.sleep(float(doc.get("ms", 10)) / 1000)
    if op == "stderr":
        print(f"model: note about {doc.get('text')}", file=sys.stderr, flush=True)
    if op == "ping":
        return json.dumps("pong")
    if op == "env":
        weights = os.environ.get("MODRUN_MODEL_WEIGHTS_FILE")
        return json.dumps(
            {
                "version": os.environ.get("MODRUN_MODEL_WEIGHTS_VERSION"),
                "params": json.loads(os.environ.get("MODRUN_MODEL_PARAMS", "null")),
                "weights": open(weights).read() if weights else None,
            }
        )
    return json.dumps({"text": str(doc.get("text", "")).upper(), "pid": os.getpid()})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", default="jsonl")
    parser.add_argument("--ready", action="store_true")
    parser.add_argument("--tokens", default="@!#START#!@,@!#STOP#!@,@!#READY#!@,@!#EXIT#!@")
    args = parser.parse_args()
    start, stop, ready, exit_token = args.tokens.split(",")
    time.sleep(0.1)  # "loading weights"
    if args.protocol == "mer":
        print(ready, flush=True)
        lines = iter(sys.stdin.readline, "")
        for line in lines:
            line = line.rstrip("\n")
            if line == exit_token:
                return
            if line != start:
                continue
            request = next(lines).rstrip("\n")
            if next(lines).rstrip("\n") != stop:
                print("model: framing error", file=sys.stderr, flush=True)
                continue
            print(f"{start}\n{answer(request)}\n{stop}", flush=True)
    else:
        if args.ready:
            print(json.dumps({"ready": True}), flush=True)
        for line in iter(sys.stdin.readline, ""):
            if line.strip():
                print(answer(line), flush=True)


if __name__ == "__main__":
    main()
