"""The overlay picture of a segment result: the original image (upright, full size) with every mask tinted in its
own colour at ``OPACITY``, its box outlined in the same colour and a ``label score`` tag, as one RGB PNG.

The segment step builds it in the same pass that writes the mask PNGs: each mask is decoded once, written, tinted
onto the canvas (only inside the mask's bounding box) and dropped, so memory holds one mask at a time. Boxes and
tags are drawn last, so no tint covers them. Pillow is imported only when there is an overlay to draw.
"""

from __future__ import annotations

import colorsys
import io
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

OPACITY = 0.45  # how far a masked pixel moves toward its mask's colour
PNG_COMPRESS_LEVEL = 3  # zlib level: photos barely compress further, and level 3 is several times faster than 9
_GOLDEN = 0.618033988749895


def colour(index: int) -> tuple[int, int, int]:
    """The colour of detection ``index``: hues a golden-ratio step apart, so neighbours always differ clearly."""
    hue = (0.02 + index * _GOLDEN) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return round(red * 255), round(green * 255), round(blue * 255)


def text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light colours, white on dark ones (ITU-R BT.601 luma)."""
    red, green, blue = background
    return (0, 0, 0) if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else (255, 255, 255)


def line_width(size: tuple[int, int]) -> int:
    return max(2, round(max(size) / 400))


def font_size(size: tuple[int, int]) -> int:
    return min(96, max(12, round(max(size) / 50)))


@lru_cache(maxsize=8)
def _font(size: int) -> Any:
    from PIL import ImageFont

    # Pillow's embedded font (FreeType): no font file needed in the Lambda layer.
    return ImageFont.load_default(size=size)


@dataclass(frozen=True)
class _Outline:
    index: int
    box: tuple[int, int, int, int]  # inclusive pixel corners
    text: str


class Overlay:
    """Draws on ``base`` (an RGB Pillow image, modified in place): ``tint`` each mask as it is decoded, ``outline``
    each detection, then ``png`` once."""

    def __init__(self, base: Any) -> None:
        if base.mode != "RGB":
            raise ValueError("the overlay's base must be an RGB image")
        self.image = base
        self._outlines: list[_Outline] = []

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    def tint(self, mask: Any, index: int) -> None:
        """Move the pixels under ``mask`` (an "L" image of the base's size, 255 = inside) ``OPACITY`` of the way
        toward the detection's colour."""
        from PIL import Image

        if mask.size != self.image.size:
            raise ValueError(f"mask {mask.size} does not match the image {self.image.size}")
        bounds = mask.getbbox()
        if bounds is None:
            return
        region = self.image.crop(bounds)
        tinted = Image.blend(region, Image.new("RGB", region.size, colour(index)), OPACITY)
        self.image.paste(tinted, bounds[:2], mask.crop(bounds))

    def outline(self, index: int, box: list[float], label: str, score: float) -> None:
        """Queue the box (``[x0, y0, x1, y1]`` in pixels, x1/y1 exclusive) and its ``label score`` tag."""
        width, height = self.image.size
        x0 = min(max(round(box[0]), 0), width - 1)
        y0 = min(max(round(box[1]), 0), height - 1)
        x1 = min(max(round(box[2]) - 1, x0), width - 1)
        y1 = min(max(round(box[3]) - 1, y0), height - 1)
        self._outlines.append(_Outline(index, (x0, y0, x1, y1), f"{label} {score:.2f}"))

    def _draw_outlines(self) -> None:
        from PIL import ImageDraw

        draw = ImageDraw.Draw(self.image)
        stroke = line_width(self.image.size)
        for item in self._outlines:
            draw.rectangle(item.box, outline=colour(item.index), width=stroke)
        font = _font(font_size(self.image.size))
        pad = max(1, stroke // 2 + 1)
        width, _ = self.image.size
        for item in self._outlines:
            left, top, right, bottom = draw.textbbox((0, 0), item.text, font=font)
            tag_width, tag_height = right - left + 2 * pad, bottom - top + 2 * pad
            x0, y0 = item.box[0], item.box[1]
            x = max(0, min(x0, width - tag_width))
            y = y0 - tag_height if y0 >= tag_height else y0  # above the box, or inside it at the image's top
            background = colour(item.index)
            draw.rectangle((x, y, x + tag_width - 1, y + tag_height - 1), fill=background)
            draw.text((x + pad - left, y + pad - top), item.text, font=font, fill=text_colour(background))

    def png(self) -> bytes:
        self._draw_outlines()
        self._outlines.clear()
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return buffer.getvalue()
