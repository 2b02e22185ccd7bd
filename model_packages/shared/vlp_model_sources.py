"""Where a model package's weights are and how to load them: shared by the DJL packages that load several models
(grounded_sam, intent_keywords). The package build copies model_packages/shared/ into every model.tar.gz beside
model.py; tests put the folder on sys.path."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import torch
import transformers

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")


def prop(properties: dict, key: str, default: Any = None) -> Any:
    value = properties.get(key)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return default
    return value.strip() if isinstance(value, str) else value


def resolve_model_source(root: str | None, spec: str | None, *, primary: bool, default: str) -> str:
    """Where a model's weights are: a subfolder `spec` of the weights directory `root` (model_id, which DJL has
    resolved from S3 to a local path), else `spec` as a local directory, else (primary model) `root` itself, a
    directory holding config.json or a hub id, else `spec` as a hub id. Raises with a clear message otherwise."""
    root_dir = root if root and os.path.isdir(root) else None
    if spec:
        if root_dir and os.path.isdir(os.path.join(root_dir, spec)):
            return os.path.join(root_dir, spec)
        if os.path.isdir(spec):
            return spec
    if primary:
        if root_dir and os.path.isfile(os.path.join(root_dir, "config.json")):
            return root_dir
        if root and root_dir is None:
            return root  # a hub id
        if root is None and not (spec and HUB_ID.match(spec)):
            return default
    if spec and HUB_ID.match(spec) and not os.path.isabs(spec):
        return spec
    raise FileNotFoundError(
        f"model weights not found: no folder {spec!r} under {root!r} and {spec!r} is neither a local directory "
        "nor a hub id (owner/name)"
    )


def model_name_of(source: str) -> str:
    """The id reported in responses: the hub id, else the name recorded in config.json, else the folder name."""
    if not os.path.isdir(source):
        return source
    try:
        with open(os.path.join(source, "config.json"), encoding="utf-8") as f:
            recorded = json.load(f).get("_name_or_path")
        if isinstance(recorded, str) and HUB_ID.match(recorded):
            return recorded
    except (OSError, ValueError):
        pass
    return os.path.basename(os.path.normpath(source))


def dtype_kwargs(dtype: torch.dtype) -> dict:
    """`from_pretrained`'s dtype argument: `dtype` from transformers 4.56, `torch_dtype` before (the LMI container
    may ship an older transformers than our tests)."""
    major, minor = (int(part) for part in re.findall(r"\d+", transformers.__version__)[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def pick_device_and_dtype(dtype: str) -> tuple[torch.device, torch.dtype]:
    if torch.cuda.is_available():
        table = {
            "fp16": torch.float16,
            "float16": torch.float16,
            "bf16": torch.bfloat16,
            "bfloat16": torch.bfloat16,
            "fp32": torch.float32,
            "float32": torch.float32,
            "auto": torch.float16,
        }
        if dtype not in table:
            raise ValueError(f"option.dtype={dtype!r} is not one of {sorted(table)}")
        return torch.device("cuda"), table[dtype]
    return torch.device("cpu"), torch.float32  # half precision on CPU is slow or unsupported: always fp32
