"""Operator commands (docs/operations.md, "Operator commands"): `make preflight|deploy|smoke|destroy ENV=<env>`,
run as `python -m ops <command> --env <env>`. boto3 against the environment's account; tested offline with
botocore's Stubber (tests/unit/ops)."""
