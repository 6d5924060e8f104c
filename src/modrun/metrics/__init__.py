"""Prometheus metrics: a node's counters (node.py) and the sum over a node's processes (processes.py)."""
