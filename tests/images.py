"""Real image bytes made by Pillow for tests (nothing binary is committed)."""

from __future__ import annotations

from io import BytesIO

from PIL import Image


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
