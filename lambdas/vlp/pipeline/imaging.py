"""Image decoding and normalisation (Pillow, imported inside the functions that need it).

``normalise`` accepts JPEG, PNG and WebP only; refuses decompression bombs before decoding a pixel; verifies the
file, then reopens it (``Image.verify`` leaves the image unusable); applies the EXIF orientation; flattens
transparency onto white; converts to RGB; and bounds the long side. "Original" sizes are the upright image's
(after EXIF orientation), which is what a person sees and what detection boxes refer to.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vlp.errors import CallerError

if TYPE_CHECKING:
    from PIL.Image import Image as PilImage
    from PIL.ImageFile import ImageFile as PilImageFile

FORMATS = ("JPEG", "PNG", "WEBP")
NORMALISED_MAX_SIDE = 2048  # docs/model-contracts.md: what the DJL packages receive
VLM_MAX_SIDE = 1024  # IDEFICS resizes far below this; keeps a data URI well under TGI's payload limit
JPEG_QUALITY = 90

# Formats we recognise but do not accept (415, not 400).
_OTHER_IMAGE_MAGIC = (
    (0, b"GIF8"),
    (0, b"BM"),
    (0, b"II*\x00"),
    (0, b"MM\x00*"),
    (0, b"\x00\x00\x01\x00"),  # ICO
    (4, b"ftypheic"),
    (4, b"ftypheix"),
    (4, b"ftypmif1"),
    (4, b"ftypavif"),
    (0, b"\xff\x0a"),  # JPEG XL codestream
    (0, b"8BPS"),  # PSD
)


@dataclass(frozen=True)
class Normalised:
    jpeg: bytes  # RGB, long side <= NORMALISED_MAX_SIDE
    vlm_jpeg: bytes  # RGB, long side <= VLM_MAX_SIDE
    width: int
    height: int
    original_width: int
    original_height: int
    format: str  # JPEG | PNG | WEBP (what was sent)


def _other_format(data: bytes) -> bool:
    return any(data[offset : offset + len(magic)] == magic for offset, magic in _OTHER_IMAGE_MAGIC)


def _too_many_pixels(width: int, height: int, max_pixels: int) -> CallerError:
    return CallerError(
        f"The image is {width}x{height} = {width * height} pixels, above the {max_pixels} allowed.",
        code="IMAGE_TOO_MANY_PIXELS",
    )


def _open(data: bytes, max_pixels: int, formats: tuple[str, ...] = FORMATS) -> PilImageFile:
    import warnings

    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data), formats=formats)
        except UnidentifiedImageError:
            if _other_format(data):
                raise CallerError(
                    "The image format is not supported: send JPEG, PNG or WebP.", code="UNSUPPORTED_IMAGE_FORMAT"
                ) from None
            raise CallerError("The file is not a JPEG, PNG or WebP image.", code="INVALID_IMAGE") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise CallerError(
                f"The image has more pixels than the {max_pixels} allowed.", code="IMAGE_TOO_MANY_PIXELS"
            ) from None
        except (OSError, ValueError, SyntaxError, struct.error):
            raise CallerError("The image header is corrupt.", code="INVALID_IMAGE") from None


def _to_rgb(image: PilImage) -> PilImage:
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    elif image.mode == "F":
        image = image.convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def _jpeg(image: PilImage, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def normalise(
    data: bytes,
    *,
    max_pixels: int,
    max_side: int = NORMALISED_MAX_SIDE,
    vlm_side: int = VLM_MAX_SIDE,
    quality: int = JPEG_QUALITY,
) -> Normalised:
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own guard, on top of the explicit check below
    image: PilImage = _open(data, max_pixels)
    width, height = image.size
    if width < 1 or height < 1:
        raise CallerError("The image has no pixels.", code="INVALID_IMAGE")
    if width * height > max_pixels:
        raise _too_many_pixels(width, height, max_pixels)
    image_format = image.format
    assert image_format is not None  # Image.open names the format it decoded
    try:
        image.verify()
    except Exception:
        raise CallerError("The image is corrupt or truncated.", code="INVALID_IMAGE") from None

    image = _open(data, max_pixels, (image_format,))
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    longest = max(width, height)
    if image_format == "JPEG" and longest > max_side:
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: less memory and time for big photos.
        scale = max_side / longest
        image.draft("RGB", (max(1, int(width * scale) + 1), max(1, int(height * scale) + 1)))
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image)
    except CallerError:
        raise
    except Exception:
        raise CallerError("The image is corrupt or truncated.", code="INVALID_IMAGE") from None
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    normalised = _jpeg(image, quality)
    small = image.copy()
    if max(small.size) > vlm_side:
        small.thumbnail((vlm_side, vlm_side), Image.Resampling.LANCZOS)
    return Normalised(
        jpeg=normalised,
        vlm_jpeg=_jpeg(small, quality - 5),
        width=image.size[0],
        height=image.size[1],
        original_width=upright[0],
        original_height=upright[1],
        format=image_format,
    )


def upright_rgb(data: bytes, *, max_pixels: int) -> Any:
    """The image as a person sees it, at full size: decoded, EXIF orientation applied, transparency flattened onto
    white, RGB (a Pillow image). Same decoding as ``normalise`` without the resizing: the overlay's background."""
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = max_pixels
    image = _open(data, max_pixels)
    width, height = image.size
    if width * height > max_pixels:
        raise _too_many_pixels(width, height, max_pixels)
    try:
        image.load()
        return _to_rgb(ImageOps.exif_transpose(image))
    except CallerError:
        raise
    except Exception:
        raise CallerError("The image is corrupt or truncated.", code="INVALID_IMAGE") from None
