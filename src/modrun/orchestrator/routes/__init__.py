"""The orchestrator's HTTP routes: one module per concern and their table (``table.py``)."""
