"""Audio format by magic bytes, and duration from the container header where the header allows.

Pure Python over the first (and, for Ogg, the last) 64 KiB of the file: no decoding, no third-party code.

| format | recognised by                         | duration from                                     |
| ------ | ------------------------------------- | ------------------------------------------------- |
| wav    | ``RIFF....WAVE``                      | ``data`` chunk size / ``fmt `` byte rate (exact)   |
| flac   | ``fLaC``                              | STREAMINFO total samples / sample rate (exact)    |
| mp3    | ID3v2 tag or an MPEG audio frame sync | Xing/Info/VBRI frame count, else CBR estimate     |
| ogg    | ``OggS`` (Vorbis or Opus)             | last page's granule position / rate (exact)       |
| webm   | EBML header, DocType webm/matroska    | Segment Info Duration (absent in live recordings) |
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

HEAD_BYTES = 64 * 1024
TAIL_BYTES = 64 * 1024


class AudioHeaderError(ValueError):
    """The file has a known magic number but a header that cannot be right."""


def sniff(head: bytes) -> str | None:
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        doc_type = _ebml_doc_type(head)
        return "webm" if doc_type in (b"webm", b"matroska") else None
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 4 and _mp3_frame(head, 0) is not None:
        return "mp3"
    return None


def duration(audio_format: str, head: bytes, *, size: int, tail: bytes = b"") -> float | None:
    """Seconds, or None where the header does not say; AudioHeaderError for a corrupt mandatory header."""
    if audio_format == "wav":
        return _wav_duration(head, size)
    if audio_format == "flac":
        return _flac_duration(head)
    if audio_format == "mp3":
        return _mp3_duration(head, size)
    if audio_format == "ogg":
        return _ogg_duration(head, tail)
    if audio_format == "webm":
        return _webm_duration(head)
    return None


# ---- WAV ----


def _wav_duration(head: bytes, size: int) -> float:
    offset = 12
    byte_rate = None
    while offset + 8 <= len(head):
        chunk_id = head[offset : offset + 4]
        (chunk_size,) = struct.unpack_from("<I", head, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt ":
            if chunk_size < 16 or body + 16 > len(head):
                raise AudioHeaderError("WAV fmt chunk too short")
            _, channels, sample_rate, byte_rate, _block_align, _bits = struct.unpack_from("<HHIIHH", head, body)
            if not channels or not sample_rate or not byte_rate:
                raise AudioHeaderError("WAV fmt chunk has zero channels, rate or byte rate")
        elif chunk_id == b"data":
            if byte_rate is None:
                raise AudioHeaderError("WAV data chunk before fmt chunk")
            available = max(0, size - body)
            data_size = available if chunk_size in (0, 0xFFFFFFFF) else min(chunk_size, available)
            return data_size / byte_rate
        offset = body + chunk_size + (chunk_size & 1)
    raise AudioHeaderError("WAV without fmt/data chunks in its first 64 KiB")


# ---- FLAC ----


def _flac_duration(head: bytes) -> float | None:
    if len(head) < 8 + 34:
        raise AudioHeaderError("FLAC too short for STREAMINFO")
    block_type = head[4] & 0x7F
    length = int.from_bytes(head[5:8], "big")
    if block_type != 0 or length < 34:
        raise AudioHeaderError("FLAC does not start with STREAMINFO")
    info = head[8 : 8 + 34]
    packed = int.from_bytes(info[10:18], "big")
    sample_rate = packed >> 44
    total_samples = packed & ((1 << 36) - 1)
    if not sample_rate:
        raise AudioHeaderError("FLAC sample rate is zero")
    return total_samples / sample_rate if total_samples else None


# ---- MP3 ----

_MP3_BITRATES = {
    (1, 1): [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    (1, 2): [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    (1, 3): [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
    (2, 1): [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    (2, 2): [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    (2, 3): [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
}
_MP3_RATES = {3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000]}


def _mp3_frame(data: bytes, offset: int) -> dict | None:
    if offset + 4 > len(data) or data[offset] != 0xFF or (data[offset + 1] & 0xE0) != 0xE0:
        return None
    b1, b2, b3 = data[offset + 1], data[offset + 2], data[offset + 3]
    version_bits = (b1 >> 3) & 3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5, 1: reserved
    layer_bits = (b1 >> 1) & 3  # 1: layer III, 2: layer II, 3: layer I, 0: reserved
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 3
    if version_bits == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer = 4 - layer_bits
    version = 1 if version_bits == 3 else 2
    bitrate = _MP3_BITRATES[(version, layer)][bitrate_index] * 1000
    sample_rate = _MP3_RATES[version_bits][rate_index]
    if layer == 1:
        samples = 384
    elif layer == 3 and version != 1:
        samples = 576
    else:
        samples = 1152
    mono = (b3 >> 6) == 3
    return {
        "version": version,
        "layer": layer,
        "bitrate": bitrate,
        "sample_rate": sample_rate,
        "samples": samples,
        "mono": mono,
    }


def _mp3_duration(head: bytes, size: int) -> float | None:
    offset = 0
    if head[:3] == b"ID3" and len(head) >= 10:
        tag_size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        offset = 10 + tag_size + (10 if head[5] & 0x10 else 0)
    # find the first frame (skip padding after the tag)
    limit = min(len(head) - 4, offset + 4096)
    while offset <= limit and _mp3_frame(head, offset) is None:
        offset += 1
    frame = _mp3_frame(head, offset)
    if frame is None:
        if offset >= len(head) - 4:
            return None  # the tag is larger than what we read: let the model decide
        raise AudioHeaderError("no MPEG audio frame after the ID3 tag")
    # Xing/Info header sits after the side information of the first frame: 32 bytes (17 mono) in MPEG-1,
    # 17 (9 mono) in MPEG-2/2.5
    stereo_side, mono_side = (32, 17) if frame["version"] == 1 else (17, 9)
    side = mono_side if frame["mono"] else stereo_side
    xing = offset + 4 + side
    if head[xing : xing + 4] in (b"Xing", b"Info") and len(head) >= xing + 12:
        (flags,) = struct.unpack_from(">I", head, xing + 4)
        if flags & 1:
            (frames,) = struct.unpack_from(">I", head, xing + 8)
            return frames * frame["samples"] / frame["sample_rate"]
    vbri = offset + 4 + 32
    if head[vbri : vbri + 4] == b"VBRI" and len(head) >= vbri + 18:
        (frames,) = struct.unpack_from(">I", head, vbri + 14)
        return frames * frame["samples"] / frame["sample_rate"]
    if frame["bitrate"]:
        return (size - offset) * 8 / frame["bitrate"]  # constant bitrate estimate
    return None


# ---- Ogg (Vorbis, Opus) ----


def _ogg_rate(head: bytes) -> tuple[int, int] | None:
    if len(head) < 27:
        raise AudioHeaderError("Ogg page header too short")
    segments = head[26]
    packet = head[27 + segments : 27 + segments + 64]
    if packet[:8] == b"OpusHead" and len(packet) >= 12:
        (pre_skip,) = struct.unpack_from("<H", packet, 10)
        return 48000, pre_skip
    if packet[:7] == b"\x01vorbis" and len(packet) >= 16:
        (rate,) = struct.unpack_from("<I", packet, 12)
        if not rate:
            raise AudioHeaderError("Vorbis sample rate is zero")
        return rate, 0
    return None  # FLAC-in-Ogg, Speex...: no duration


def _ogg_duration(head: bytes, tail: bytes) -> float | None:
    rate = _ogg_rate(head)
    data = tail or head
    position = data.rfind(b"OggS")
    if rate is None or position < 0 or position + 14 > len(data):
        return None
    (granule,) = struct.unpack_from("<q", data, position + 6)
    if granule < 0:
        return None
    sample_rate, pre_skip = rate
    return max(0, granule - pre_skip) / sample_rate


# ---- WebM / Matroska (EBML) ----


def _vint(data: bytes, offset: int, *, keep_marker: bool) -> tuple[int, int] | None:
    if offset >= len(data):
        return None
    first = data[offset]
    if first == 0:
        return None
    length = 8 - first.bit_length() + 1
    if offset + length > len(data):
        return None
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    for byte in data[offset + 1 : offset + length]:
        value = (value << 8) | byte
    return value, length


def _elements(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, bool]]:
    """EBML elements between ``start`` and ``end``: (id, body offset, body end, size unknown)."""
    offset = start
    while offset < end:
        element_id = _vint(data, offset, keep_marker=True)
        if element_id is None:
            return
        size = _vint(data, offset + element_id[1], keep_marker=False)
        if size is None:
            return
        body = offset + element_id[1] + size[1]
        unknown = size[0] == (1 << (7 * size[1])) - 1
        yield element_id[0], body, (end if unknown else min(end, body + size[0])), unknown
        if unknown:
            return
        offset = body + size[0]


def _ebml_doc_type(head: bytes) -> bytes | None:
    for element_id, body, end, _ in _elements(head, 0, len(head)):
        if element_id == 0x1A45DFA3:
            for child, child_body, child_end, _ in _elements(head, body, end):
                if child == 0x4282:
                    return head[child_body:child_end]
        return None
    return None


def _webm_duration(head: bytes) -> float | None:
    for element_id, body, end, _ in _elements(head, 0, len(head)):
        if element_id != 0x18538067:  # Segment
            continue
        for child, child_body, child_end, _ in _elements(head, body, end):
            if child == 0x1F43B675:  # Cluster: Info comes before the media
                return None
            if child != 0x1549A966:  # Info
                continue
            scale = 1_000_000
            value = None
            for leaf, leaf_body, leaf_end, _ in _elements(head, child_body, child_end):
                raw = head[leaf_body:leaf_end]
                if leaf == 0x2AD7B1 and raw:
                    scale = int.from_bytes(raw, "big")
                elif leaf == 0x4489 and len(raw) in (4, 8):
                    (value,) = struct.unpack(">f" if len(raw) == 4 else ">d", raw)
            return value * scale / 1e9 if value is not None and value >= 0 else None
    return None
