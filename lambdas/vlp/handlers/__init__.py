"""Lambda entry points, one module per function; each exposes ``handler`` (e.g. ``vlp.handlers.analyze.handler``).

A handler module builds its settings (validated environment) and its AWS clients at import, once per
container, and delegates to the logic in vlp.api / vlp.pipeline. A pipeline step's module is one line,
``handler = step_entry("<step>")`` (vlp.entry): the registry (vlp.steps) says which clients it builds, and its logic
(``vlp.pipeline.<step>``) is imported at its first invocation.
"""
