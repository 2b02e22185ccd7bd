"""Python client of the VLP visual-language API (docs/client.md); the `vlp` command line is vlp_client.cli."""

from vlp_client.client import VlpClient
from vlp_client.errors import VlpError
from vlp_client.local import LocalMode, find_local_mode
from vlp_client.media import MAX_INLINE_IMAGE_BYTES
from vlp_client.restyle import STYLES
from vlp_client.results import (
    AnalyzeResult,
    Detection,
    Intent,
    Job,
    Keyword,
    Mask,
    Restyle,
    RestyledImage,
    RestyleResult,
    Tag,
)

__all__ = [
    "MAX_INLINE_IMAGE_BYTES",
    "STYLES",
    "AnalyzeResult",
    "Detection",
    "Intent",
    "Job",
    "Keyword",
    "LocalMode",
    "Mask",
    "Restyle",
    "RestyleResult",
    "RestyledImage",
    "Tag",
    "VlpClient",
    "VlpError",
    "find_local_mode",
]
__version__ = "0.1.0"
