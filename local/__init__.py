"""Local mode: the whole VLP service on one machine, offline (docs/local-mode.md).

`python -m local.up up` starts it, `python -m local.up down` stops it (the Makefile's `up` / `down` targets).
Modules (each a process of its own, started by local.up):

- s3.py: the S3 emulator (moto server) with S3's presigned-POST policy checks in front;
- sagemaker_runtime.py: the InvokeEndpoint wire protocol over the model packages (runs in .venv-models),
  with fault and latency injection (`/_admin/*`);
- lambda_service.py + lambda_sandbox.py: the Lambda Invoke API; each function in its own pre-initialised
  sandbox processes, with the function's environment;
- stepfunctions.py + stepfunctions.mjs: the state machines exactly as synthesized, run by aws-local-stepfunctions
  behind a Step Functions API (StartSyncExecution, StartExecution, DescribeExecution, ...);
- api.py: the HTTP API (API Gateway proxy events to the same Lambda handlers).

This package is stdlib-only at import, so both virtualenvs can import it.
"""
