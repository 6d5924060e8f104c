"""The runtime node (``modrun serve``): its settings, and the one place
its parts are created, started and stopped."""
