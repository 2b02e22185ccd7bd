"""COCO compressed RLE (as pycocotools writes it) decoded in pure Python, and masks rendered as PNG (Pillow,
imported only when there is a mask to render).

COCO RLE: ``{"size": [height, width], "counts": "<string>"}``; the counts are run lengths over the mask in
column-major (Fortran) order, starting with a run of zeros, each run length delta-coded against the run two
places back (from the third run on) and written 5 bits per character (+48), with bit 0x20 meaning "more".
"""

from __future__ import annotations

import io
from typing import Any


def rle_counts(counts: str) -> list[int]:
    """Run lengths from a COCO compressed counts string (pycocotools ``rleFrString``)."""
    runs: list[int] = []
    position = 0
    length = len(counts)
    while position < length:
        value = 0
        shift = 0
        more = True
        while more:
            if position >= length:
                raise ValueError("truncated RLE counts")
            char = ord(counts[position]) - 48
            if char < 0 or char > 63:
                raise ValueError("invalid RLE character")
            value |= (char & 0x1F) << (5 * shift)
            more = bool(char & 0x20)
            position += 1
            shift += 1
            if not more and char & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def rle_string(runs: list[int]) -> str:
    """The inverse of ``rle_counts`` (pycocotools ``rleToString``)."""
    out = []
    for index, run in enumerate(runs):
        value = run - runs[index - 2] if index > 2 else run
        more = True
        while more:
            char = value & 0x1F
            value >>= 5
            more = (value != -1) if (char & 0x10) else (value != 0)
            if more:
                char |= 0x20
            out.append(chr(char + 48))
    return "".join(out)


def rle_area(runs: list[int]) -> int:
    return sum(runs[1::2])


def decode_rle(rle: dict) -> tuple[int, int, bytes]:
    """(height, width, column-major bytes: 0 or 255 per pixel) of a COCO RLE dict."""
    height, width = (int(v) for v in rle["size"])
    runs = rle_counts(rle["counts"])
    total = height * width
    if any(run < 0 for run in runs) or sum(runs) != total:
        raise ValueError("RLE runs do not cover the mask size")
    buffer = bytearray(total)
    position = 0
    for index, run in enumerate(runs):
        if index & 1 and run:
            buffer[position : position + run] = b"\xff" * run
        position += run
    return height, width, bytes(buffer)


def mask_image(rle: dict, *, size: tuple[int, int] | None = None) -> Any:
    """The mask as a Pillow "L" image (0 or 255), resized (nearest neighbour) to ``size`` = (width, height)."""
    from PIL import Image

    height, width, column_major = decode_rle(rle)
    # column-major bytes are a row-major image of the transposed mask
    image = Image.frombytes("L", (height, width), column_major).transpose(Image.Transpose.TRANSPOSE)
    if size is not None and size != (width, height):
        image = image.resize(size, Image.Resampling.NEAREST)
    return image


def encode_mask(image: Any) -> tuple[bytes, int]:
    """A 1-bit PNG of an "L" mask image, and the mask's area in pixels."""
    area = image.histogram()[255]
    buffer = io.BytesIO()
    image.convert("1").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue(), area


def mask_png(rle: dict, *, size: tuple[int, int] | None = None) -> tuple[bytes, int]:
    """A 1-bit PNG of the mask, resized (nearest neighbour) to ``size`` = (width, height) when given, and the
    mask's area in pixels of that PNG."""
    return encode_mask(mask_image(rle, size=size))
