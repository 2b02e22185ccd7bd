"""The CDK app's constructs. The pipeline's step registry is Lambda code (lambdas/vlp/steps.py, standard library
only), shared with the app: lambdas/ goes on the import path here, as it does for pytest and mypy (pyproject)."""

import sys
from pathlib import Path

_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.append(_LAMBDAS)
