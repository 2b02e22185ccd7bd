"""Logic of the HTTP API functions (uploads, analyze, jobs): plain functions over injected clients."""
