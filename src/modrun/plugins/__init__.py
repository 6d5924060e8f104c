"""Plugins: discovery, typed schemas, instance pools, the function catalog, hot reload."""
