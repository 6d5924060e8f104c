"""How a model runs when it is not an HTTP endpoint: a local process over pipes,
the same over SSH, or an embedded in-process model."""
