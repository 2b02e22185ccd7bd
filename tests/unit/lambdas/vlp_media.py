"""Test media built in memory: images (Pillow), audio containers (stdlib + hand-made headers), COCO RLE."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from PIL import Image
from vlp.pipeline.masks import rle_string


def image_bytes(
    width: int = 64,
    height: int = 48,
    *,
    fmt: str = "PNG",
    mode: str = "RGB",
    orientation: int | None = None,
    color=(200, 30, 30),
) -> bytes:
    if mode == "RGBA":
        color = (*tuple(color[:3]), 128)
    elif mode in ("L", "P"):
        color = 120
    image = Image.new(mode, (width, height), color)
    # a marker in the top-left corner, to check orientation handling
    for x in range(min(8, width)):
        for y in range(min(4, height)):
            image.putpixel((x, y), (0, 0, 255) if mode == "RGB" else image.getpixel((x, y)))
    buffer = io.BytesIO()
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a tiny (invalid) image stream: a decompression bomb's
    signature without the bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def wav_bytes(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """`seconds` of 16-bit mono silence."""
    return pcm_wav(b"\x00\x00" * int(seconds * rate), rate)


def flac_bytes(seconds: float = 3.0, rate: int = 44100) -> bytes:
    total = int(seconds * rate)
    packed = (rate << 44) | (1 << 41) | (15 << 36) | total  # rate, 2 channels - 1, 16 bits - 1, samples
    info = struct.pack(">HH", 4096, 4096) + b"\x00" * 6 + packed.to_bytes(8, "big") + b"\x00" * 16
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info + b"\x00" * 64


def mp3_bytes(seconds: float = 2.0, *, xing: bool = True) -> bytes:
    """MPEG-1 layer III, 128 kbit/s, 44.1 kHz stereo frames (silence), with a Xing header when asked."""
    header = b"\xff\xfb\x90\x00"  # sync, MPEG-1 L3, no CRC | 128 kbps, 44.1 kHz | stereo
    frame_length = 144 * 128000 // 44100  # 417 bytes
    frames = int(seconds * 44100 / 1152)
    first = bytearray(header + b"\x00" * (frame_length - 4))
    if xing:
        first[4 + 32 : 4 + 32 + 12] = b"Xing" + struct.pack(">II", 1, frames)
    body = header + b"\x00" * (frame_length - 4)
    return b"ID3\x03\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10 + bytes(first) + body * (frames - 1)


def _ogg_page(packet: bytes, granule: int, sequence: int, flags: int = 0) -> bytes:
    segments = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = b"OggS" + bytes([0, flags]) + struct.pack("<qIII", granule, 1, sequence, 0) + bytes([len(segments)])
    return header + bytes(segments) + packet


def ogg_opus_bytes(seconds: float = 4.0) -> bytes:
    head = b"OpusHead" + bytes([1, 1]) + struct.pack("<HIhB", 312, 48000, 0, 0)
    return (
        _ogg_page(head, 0, 0, flags=2)
        + _ogg_page(b"OpusTags" + b"\x00" * 8, 0, 1)
        + _ogg_page(b"\x00" * 100, int(seconds * 48000) + 312, 2, flags=4)
    )


def _ebml(element_id: int, payload: bytes) -> bytes:
    id_bytes = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    size = len(payload)
    return id_bytes + (0x01 << 56 | size).to_bytes(8, "big") + payload


def webm_bytes(seconds: float | None = 5.0) -> bytes:
    header = _ebml(0x1A45DFA3, _ebml(0x4282, b"webm"))
    info_children = _ebml(0x2AD7B1, (1_000_000).to_bytes(3, "big"))
    if seconds is not None:
        info_children += _ebml(0x4489, struct.pack(">d", seconds * 1000.0))
    segment = _ebml(0x18538067, _ebml(0x1549A966, info_children) + _ebml(0x1F43B675, b"\x00" * 32))
    return header + segment


def rle_from_mask(rows: list[list[int]]) -> dict:
    """COCO compressed RLE of a small 0/1 mask given as rows (for fixtures)."""
    height, width = len(rows), len(rows[0])
    flat = [rows[y][x] for x in range(width) for y in range(height)]  # column-major
    runs = []
    current, count = 0, 0
    for value in flat:
        if value == current:
            count += 1
        else:
            runs.append(count)
            current, count = value, 1
    runs.append(count)
    return {"size": [height, width], "counts": rle_string(runs)}


# ---- hostile media: headers that lie (shared by the unit and the local bad-input batteries) ----


def small_lossless_webp() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 10)).save(buffer, format="WEBP", lossless=True)
    return buffer.getvalue()


def webp_vp8x(width: int, height: int) -> bytes:
    """A WebP whose extended header (VP8X) claims a width x height canvas, over a real 8x8 lossless image."""
    small = small_lossless_webp()
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + small[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_vp8l(width: int, height: int) -> bytes:
    """A lossless WebP whose VP8L header says width x height (at most 16384 each), the image data unchanged."""
    data = bytearray(small_lossless_webp())
    at = data.index(b"VP8L") + 8 + 1  # chunk header, then the 0x2f signature
    bits = int.from_bytes(data[at : at + 4], "little")
    bits = (bits & ~((1 << 28) - 1)) | (width - 1) | ((height - 1) << 14)
    data[at : at + 4] = bits.to_bytes(4, "little")
    return bytes(data)


def zip_member(name: str, payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, payload)
    return buffer.getvalue()


def mp3_xing_frames(frames: int) -> bytes:
    data = bytearray(mp3_bytes(1.0))
    at = data.index(b"Xing") + 8
    data[at : at + 4] = struct.pack(">I", frames)
    return bytes(data)


def pcm_wav(
    data: bytes, rate: int, bits: int = 16, *, byte_rate: int | None = None, data_size: int | None = None
) -> bytes:
    """A mono PCM WAV of `data`, its header written by hand so that it can lie: `byte_rate` and `data_size` replace
    what the header would truthfully say (rate x bytes per sample, len(data))."""
    align = bits // 8
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * align if byte_rate is None else byte_rate, align, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(data) if data_size is None else data_size)
        + data
    )


def wav_with(byte_rate: int, data_size: int) -> bytes:
    """0.1 s of 16 kHz 16-bit silence whose header claims this byte rate and data size."""
    return pcm_wav(b"\x00" * 3200, 16000, byte_rate=byte_rate, data_size=data_size)
