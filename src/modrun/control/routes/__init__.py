"""The control plane's HTTP handlers, one module per concern, and their one route table (``table.py``)."""
