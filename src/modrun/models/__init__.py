"""Models functions invoke by name: providers reached over HTTP (and, later, executors)."""
