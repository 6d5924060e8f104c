"""The Modus ABI: plugins built with the Modus SDK (docs/modus.md)."""
