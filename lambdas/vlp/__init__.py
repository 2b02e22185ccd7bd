"""VLP request path: the Lambda runtime code behind the HTTP API and the pipeline state machines.

Layout (see docs/pipeline.md):
- ``vlp.handlers.<function>``: thin Lambda entry points, one module per function (``handler`` in each);
- ``vlp.api`` and ``vlp.pipeline``: plain logic that takes its boto3/botocore clients as arguments;
- ``vlp.inference``: one client module per model-serving contract (docs/model-contracts.md);
- ``vlp.errors``: the domain errors, their codes and HTTP statuses, and the Step Functions error mapping.

Keep module-level imports light: every handler's import time is its cold start (bench/cold_start.py).
"""

import os as _os

# We use no pydantic plugins; without this, the first model built scans every installed distribution's entry
# points for them (tens of milliseconds of cold start).
_os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
