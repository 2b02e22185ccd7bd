"""A handler module whose import fails (a Lambda init error)."""

raise RuntimeError("invalid Lambda environment: SOMETHING: missing")
