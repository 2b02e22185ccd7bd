"""Local mode (`make up`): where its API listens and which auth it uses, from .local/run/ of the checkout."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_LOCAL_URL = "http://127.0.0.1:8080"
LOCAL_REGION = "us-east-1"
STATE_DIR_VARIABLE = "VLP_LOCAL_DIR"  # the .local directory, when not found above the working directory


@dataclass(frozen=True)
class LocalMode:
    api_url: str = DEFAULT_LOCAL_URL
    auth: str = "none"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str = LOCAL_REGION
    api_keys: list[str] = field(default_factory=list)
    state_dir: Path | None = None


def _state_dir(start: Path | None = None) -> Path | None:
    explicit = os.environ.get(STATE_DIR_VARIABLE)
    if explicit:
        return Path(explicit)
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / ".local" / "run" / "state.json").is_file():
            return directory / ".local"
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def find_local_mode(start: Path | None = None) -> LocalMode:
    """Local mode as `make up` left it: run/state.json (the API URL) and run/credentials.json (the auth mode and
    its local credentials); the defaults (http://127.0.0.1:8080, no auth) when there is none."""
    state_dir = _state_dir(start)
    if state_dir is None:
        return LocalMode()
    state = _read(state_dir / "run" / "state.json")
    credentials = _read(state_dir / "run" / "credentials.json")
    keys = credentials.get("api_keys")
    ports: dict[str, Any] = state["ports"] if isinstance(state.get("ports"), dict) else {}
    api_url = state.get("api_url") or (f"http://127.0.0.1:{ports['api']}" if ports.get("api") else DEFAULT_LOCAL_URL)
    return LocalMode(
        api_url=str(api_url),
        auth=str(credentials.get("auth") or "none"),
        access_key_id=credentials.get("aws_access_key_id"),
        secret_access_key=credentials.get("aws_secret_access_key"),
        region=str(credentials.get("region") or LOCAL_REGION),
        api_keys=[str(k) for k in keys] if isinstance(keys, list) else [],
        state_dir=state_dir,
    )
