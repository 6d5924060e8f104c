"""The app manifest (``modrun.json``, or the legacy ``hypermode.json``)."""
