"""Host functions offered to plugins, grouped by capability (one module each)."""
