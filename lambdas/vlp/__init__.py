"""VLP request path: the Lambda runtime code behind the HTTP API and the pipeline state machines.

Layout (see docs/pipeline.md):
- ``vlp.handlers.<function>``: thin Lambda entry points, one module per function (``handler`` in each);
- ``vlp.steps``: the pipeline's steps and routes, named once (standard library only: the CDK app reads it too);
- ``vlp.requests``: the analysis request models, shared by the HTTP layer and the pipeline;
- ``vlp.api`` and ``vlp.pipeline``: plain logic that takes its boto3/botocore clients as arguments (one
  ``vlp.pipeline.<step>`` module per step, its results typed in ``vlp.pipeline.models``);
- ``vlp.inference``: one client module per model-serving contract (docs/model-contracts.md);
- ``vlp.errors``: the domain errors, their codes and HTTP statuses, and the Step Functions error mapping.

Keep module-level imports light: every handler's import time is its cold start (bench/cold_start.py).
"""

import os as _os

# We use no pydantic plugins; without this, the first model built scans every installed distribution's entry
# points for them (tens of milliseconds of cold start).
_os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
