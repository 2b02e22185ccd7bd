"""What a file is (from its first bytes, else its name) and how it travels: small images inline, the rest uploaded."""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

# The API's inline limit (lambdas/vlp/api/models.py MAX_INLINE_IMAGE_BYTES; a unit test keeps them equal): images
# up to this size go as image_base64, larger ones (and all audio) through POST /v1/uploads.
MAX_INLINE_IMAGE_BYTES = 160 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
AUDIO_TYPES = ("audio/wav", "audio/mpeg", "audio/flac", "audio/ogg", "audio/webm")
# keys the API issues (uploads/<caller>/<uuid>/<name>, inputs/<caller>/<uuid>/<name>): a string argument that is one
# is sent as a key
KEY_PATTERN = re.compile(r"^(uploads|inputs)/([0-9a-f]{32}/)?[0-9a-fA-F-]{36}/[A-Za-z0-9._-]{1,100}$")
_BY_EXTENSION = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".webm": "audio/webm",
}


def sniff(data: bytes, name: str | None = None) -> str | None:
    """The MIME type of an image or audio file, from its magic bytes, else from its file name."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "audio/webm"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if name:
        suffix = Path(name).suffix.lower()
        return _BY_EXTENSION.get(suffix) or mimetypes.guess_type(name)[0]
    return None


def is_key(value: str) -> bool:
    return bool(KEY_PATTERN.match(value))
