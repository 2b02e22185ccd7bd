"""The demo's unit tests run in .venv-demo (make test-demo), with the repository root importable."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
