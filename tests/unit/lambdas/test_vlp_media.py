"""Image normalisation (Pillow), audio headers (magic bytes, durations), COCO RLE and PNG masks."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from vlp.errors import CallerError
from vlp.pipeline import audio
from vlp.pipeline.imaging import normalise
from vlp.pipeline.masks import decode_rle, mask_png, rle_area, rle_counts, rle_string
from vlp_coco_vectors import VECTORS
from vlp_media import (
    flac_bytes,
    image_bytes,
    mp3_bytes,
    ogg_opus_bytes,
    png_header_only,
    rle_from_mask,
    wav_bytes,
    webm_bytes,
)

MP = 40_000_000


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


# ---- images ----


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_formats_are_normalised_to_rgb_jpeg(fmt):
    result = normalise(image_bytes(320, 200, fmt=fmt), max_pixels=MP)
    assert result.format == fmt
    assert (result.width, result.height) == (320, 200) == (result.original_width, result.original_height)
    image = decoded(result.jpeg)
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (320, 200)


def test_long_side_is_bounded_and_the_vlm_copy_is_smaller():
    result = normalise(image_bytes(3000, 1000, fmt="JPEG"), max_pixels=MP)
    assert (result.original_width, result.original_height) == (3000, 1000)
    assert max(result.width, result.height) == 2048 and abs(result.width / result.height - 3) < 0.01
    assert max(decoded(result.vlm_jpeg).size) == 1024


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotation_is_applied_and_original_size_is_upright(orientation):
    result = normalise(image_bytes(300, 100, fmt="JPEG", orientation=orientation), max_pixels=MP)
    assert (result.original_width, result.original_height) == (100, 300)
    assert (result.width, result.height) == (100, 300)


def test_exif_rotation_with_downscale():
    result = normalise(image_bytes(4000, 1000, fmt="JPEG", orientation=6), max_pixels=MP)
    assert (result.original_width, result.original_height) == (1000, 4000)
    assert result.height == 2048 and result.width == 512


def test_transparency_is_flattened_onto_white():
    result = normalise(image_bytes(32, 32, fmt="PNG", mode="RGBA", color=(0, 0, 0)), max_pixels=MP)
    r, g, b = decoded(result.jpeg).convert("RGB").getpixel((20, 20))
    assert min(r, g, b) > 100  # 50 % black over white, not black


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "I;16"])
def test_other_modes_become_rgb(mode):
    image = Image.new(mode, (16, 16))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if mode == "CMYK" else "PNG")
    assert decoded(normalise(buffer.getvalue(), max_pixels=MP).jpeg).mode == "RGB"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"hello, this is not an image", "INVALID_IMAGE"),
        (image_bytes(64, 64, fmt="PNG")[:80], "INVALID_IMAGE"),  # truncated PNG
        (image_bytes(64, 64, fmt="JPEG")[:300], "INVALID_IMAGE"),  # truncated JPEG
        (image_bytes(16, 16, fmt="GIF"), "UNSUPPORTED_IMAGE_FORMAT"),
        (image_bytes(16, 16, fmt="BMP"), "UNSUPPORTED_IMAGE_FORMAT"),
        (image_bytes(16, 16, fmt="TIFF"), "UNSUPPORTED_IMAGE_FORMAT"),
        (png_header_only(50_000, 50_000), "IMAGE_TOO_MANY_PIXELS"),  # decompression bomb (2.5 Gpx)
        (png_header_only(7_000, 6_000), "IMAGE_TOO_MANY_PIXELS"),  # above our bound, below Pillow's
    ],
)
def test_bad_images_are_caller_errors(data, code):
    with pytest.raises(CallerError) as info:
        normalise(data, max_pixels=MP)
    assert info.value.code == code and 400 <= info.value.status < 500


def test_pixel_bound_is_configurable():
    with pytest.raises(CallerError) as info:
        normalise(image_bytes(200, 200), max_pixels=10_000)
    assert info.value.code == "IMAGE_TOO_MANY_PIXELS"


# ---- audio ----


@pytest.mark.parametrize(
    ("data", "fmt", "seconds"),
    [
        (wav_bytes(1.5), "wav", 1.5),
        (flac_bytes(3.0), "flac", 3.0),
        (mp3_bytes(2.0), "mp3", 2.0),
        (ogg_opus_bytes(4.0), "ogg", 4.0),
        (webm_bytes(5.0), "webm", 5.0),
    ],
)
def test_audio_format_and_duration_from_headers(data, fmt, seconds):
    head = data[: audio.HEAD_BYTES]
    assert audio.sniff(head) == fmt
    assert audio.duration(fmt, head, size=len(data), tail=data[-audio.TAIL_BYTES :]) == pytest.approx(seconds, abs=0.05)


def test_mp3_without_xing_header_uses_the_constant_bitrate_estimate():
    data = mp3_bytes(3.0, xing=False)
    assert audio.duration("mp3", data[: audio.HEAD_BYTES], size=len(data)) == pytest.approx(3.0, abs=0.1)


def test_webm_without_duration_and_unknown_formats():
    data = webm_bytes(None)
    assert audio.sniff(data) == "webm" and audio.duration("webm", data, size=len(data)) is None
    for other in (b"\x00\x00\x00\x20ftypM4A ", b"#!AMR\n", b"", image_bytes()):
        assert audio.sniff(other) is None


@pytest.mark.parametrize(
    "data",
    [
        b"RIFF\x24\x00\x00\x00WAVEdata\x00\x00\x00\x00",  # data before fmt
        b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\x00" * 16,  # zero channels/rate
        b"fLaC\x04\x00\x00\x22" + b"\x00" * 34,  # first block is not STREAMINFO
    ],
)
def test_corrupt_mandatory_headers_are_refused(data):
    with pytest.raises(audio.AudioHeaderError):
        audio.duration(audio.sniff(data), data, size=len(data))


# ---- masks ----


@pytest.mark.parametrize("vector", VECTORS)
def test_rle_decoding_matches_pycocotools(vector):
    height, width = vector["size"]
    h, w, column_major = decode_rle({"size": vector["size"], "counts": vector["counts"]})
    assert (h, w) == (height, width)
    row_major = "".join("1" if column_major[x * height + y] else "0" for y in range(height) for x in range(width))
    assert row_major == vector["bits"]
    assert rle_area(rle_counts(vector["counts"])) == vector["area"]
    assert rle_string(rle_counts(vector["counts"])) == vector["counts"]


def test_mask_png_is_resized_to_the_original_image():
    rle = rle_from_mask([[1 if x < 2 else 0 for x in range(4)] for y in range(2)])  # left half of a 4x2 mask
    png, area = mask_png(rle, size=(40, 20))
    image = decoded(png)
    assert image.format == "PNG" and image.size == (40, 20) and image.mode == "1"
    assert area == 400
    assert image.getpixel((5, 5)) and not image.getpixel((35, 5))


def test_invalid_rle_is_refused():
    with pytest.raises(ValueError):
        decode_rle({"size": [10, 10], "counts": "3"})  # does not cover 100 pixels
    with pytest.raises(ValueError):
        rle_counts("\x7f")
