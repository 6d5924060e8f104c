"""Settings of a modrun node and the small value formats flags use."""
