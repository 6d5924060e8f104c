"""The ``modrun`` command line."""
