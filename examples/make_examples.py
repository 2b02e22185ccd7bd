"""Make the example inputs in examples/ (`.venv/bin/python examples/make_examples.py`): drawn and spoken by this
script, so they are the project's own work under the project's licence (see examples/README.md).

    red-square.png   a red square on a grey background (320x240): "segment the red square"
    shapes.jpg       a simple scene: sky, grass, a sun, a house (red square body, brown roof), a blue ball (480x320)
    question.wav     "What is in this picture?" spoken by espeak-ng (16 kHz mono 16-bit), when espeak-ng is installed

The images are drawn deterministically with Pillow (same bytes on every run with the same Pillow). The spoken
question needs `espeak-ng` (Debian: `apt-get install espeak-ng`); without it the existing file is kept.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import wave
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
QUESTION = "What is in this picture?"
SAMPLE_RATE = 16000

GREY = (128, 128, 128)
RED = (220, 30, 30)


def red_square(size: tuple[int, int] = (320, 240), side: int = 100) -> Image.Image:
    """A red square centred on a grey background."""
    image = Image.new("RGB", size, GREY)
    x0, y0 = (size[0] - side) // 2, (size[1] - side) // 2
    ImageDraw.Draw(image).rectangle((x0, y0, x0 + side - 1, y0 + side - 1), fill=RED)
    return image


def shapes(size: tuple[int, int] = (480, 320)) -> Image.Image:
    """A child's drawing of a scene: sky, grass, sun, a house with a roof and a door, a ball."""
    width, height = size
    horizon = height * 2 // 3
    image = Image.new("RGB", size, (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, horizon, width, height), fill=(70, 160, 60))
    draw.ellipse((width - 110, 20, width - 40, 90), fill=(250, 210, 40))
    house = (60, horizon - 110, 200, horizon + 10)
    draw.rectangle(house, fill=RED)
    draw.polygon(
        [(house[0] - 15, house[1]), (house[2] + 15, house[1]), ((house[0] + house[2]) // 2, house[1] - 70)],
        fill=(120, 70, 30),
    )
    draw.rectangle((115, horizon - 40, 145, horizon + 10), fill=(80, 50, 20))
    draw.ellipse((300, horizon - 10, 370, horizon + 60), fill=(30, 80, 220))
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def spoken(text: str, espeak: str) -> bytes:
    """`text` spoken by espeak-ng (which writes 22,050 Hz), resampled to 16 kHz mono 16-bit, Whisper's rate, with
    the standard library only (linear interpolation)."""
    raw = subprocess.run([espeak, "-v", "en-us", "-s", "150", "--stdout", text], check=True, capture_output=True)
    with wave.open(io.BytesIO(raw.stdout)) as source:
        rate, width, channels = source.getframerate(), source.getsampwidth(), source.getnchannels()
        frames = source.readframes(source.getnframes())
    if width != 2 or channels != 1:
        raise RuntimeError(f"espeak-ng wrote {channels} channel(s) of {width * 8}-bit audio; expected 16-bit mono")
    samples = memoryview(frames).cast("h")
    count = int(len(samples) * SAMPLE_RATE / rate)
    out = bytearray()
    for i in range(count):
        position = i * rate / SAMPLE_RATE
        j = int(position)
        a = samples[j]
        b = samples[min(j + 1, len(samples) - 1)]
        out += int(a + (b - a) * (position - j)).to_bytes(2, "little", signed=True)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as target:
        target.setnchannels(1)
        target.setsampwidth(2)
        target.setframerate(SAMPLE_RATE)
        target.writeframes(bytes(out))
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: examples/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written = {
        "red-square.png": png_bytes(red_square()),
        "shapes.jpg": jpeg_bytes(shapes()),
    }
    espeak = shutil.which("espeak-ng")
    if espeak:
        written["question.wav"] = spoken(QUESTION, espeak)
    else:
        print("espeak-ng not found (apt-get install espeak-ng): question.wav left as it is", file=sys.stderr)
    for name, data in written.items():
        (args.out / name).write_bytes(data)
        print(f"{name:<16} {len(data):>7} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
