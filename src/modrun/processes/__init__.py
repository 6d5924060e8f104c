"""Running one node as several processes on one port (``modrun serve --processes``)."""
