"""Real image bytes made by Pillow for tests (nothing binary is committed)."""

from __future__ import annotations

from io import BytesIO

from PIL import Image

from server.models import NewImage


def make_image(fmt: str = "PNG", size: tuple[int, int] = (40, 30), color: str = "teal") -> bytes:
    out = BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def make_noise_jpeg(target_bytes: int) -> bytes:
    """A valid JPEG of roughly `target_bytes` (random pixels compress badly)."""
    import os

    side = 64
    while True:
        img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        out = BytesIO()
        img.save(out, "JPEG", quality=95)
        if out.tell() >= target_bytes:
            return out.getvalue()
        side = int(side * 1.4)


def pad_png_to(data: bytes, total: int) -> bytes:
    """A PNG of exactly `total` bytes: an ancillary text chunk holds the padding."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    overhead = 12  # length + type + crc around the chunk body
    need = total - len(data) - overhead - len(b"pad\x00")
    assert need >= 0, "image already larger than target"
    body = b"pad\x00" + b"x" * need
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    iend = data.rindex(b"IEND") - 4
    padded = data[:iend] + chunk + data[iend:]
    assert len(padded) == total, (len(padded), total)
    return padded


def make_photo(width: int, height: int, seed: int = 0, quality: int = 90) -> bytes:
    """A JPEG that compresses like a photograph: smooth colour fields, shapes with soft
    edges and sensor-like grain (flat colours or pure noise would flatter or punish the
    thumbnails). Deterministic for a given seed."""
    import random

    from PIL import ImageDraw, ImageFilter

    rng = random.Random(seed)
    img = Image.frombytes("RGB", (16, 12), rng.randbytes(16 * 12 * 3)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    draw = ImageDraw.Draw(img)
    for _ in range(200):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(width // 100 + 1, width // 12 + 2)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randbytes(3)))
    img = img.filter(ImageFilter.GaussianBlur(2))
    grain = Image.effect_noise((width, height), 24).convert("RGB")
    out = BytesIO()
    Image.blend(img, grain, 0.2).save(out, "JPEG", quality=quality)
    return out.getvalue()


def new_row(n: int, owner: str = "a" * 64) -> NewImage:
    """A row to insert directly (no file behind it), numbered `n` for a unique filename."""
    return NewImage(
        filename=f"{n:032x}.png",
        original_name=f"image {n}.png",
        size=100 + n,
        width=10,
        height=20,
        format="PNG",
        owner_hash=owner,
    )
