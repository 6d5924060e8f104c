"""The fleet's head, ``modrun orchestrator``: the one place the control loop, the
control plane, the broker link and the gateway are created, started and stopped."""
