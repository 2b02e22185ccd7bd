"""Whisper speech recognition behind the SageMaker inference container contract.

`GET /ping` and `POST /invocations` on port 8080 (docs/whisper-container.md). faster-whisper (CTranslate2) runs the
model; PyAV decodes the audio; the HTTP layer is the standard library's ThreadingHTTPServer. No torch at runtime.

The server uses two shared modules, model_packages/shared/vlp_hub_token.py and vlp_errors.py (the DJL packages use
them too). The image copies them beside this package (/opt/program, on its PYTHONPATH: Dockerfile); in a checkout
they stay in model_packages/shared, which is put on sys.path here, so local mode, the tests and the benchmark run
the server from the repository as they are.
"""

import sys
from pathlib import Path

__version__ = "1.0.0"

_CHECKOUT_SHARED = Path(__file__).resolve().parents[2] / "shared"
if (_CHECKOUT_SHARED / "vlp_hub_token.py").is_file() and str(_CHECKOUT_SHARED) not in sys.path:
    sys.path.append(str(_CHECKOUT_SHARED))
