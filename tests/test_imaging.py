"""server.imaging: the real format comes from decoding, hostile files are refused, and a
photo's location is stripped."""

from __future__ import annotations

from io import BytesIO

import pytest
from PIL import Image

from server.errors import ImageTooManyPixels, UnsupportedImage
from server.imaging import identify, prepare_upload
from tests.images import make_image

LIMIT = 40_000_000


@pytest.mark.parametrize(("fmt", "ext"), [("JPEG", ".jpg"), ("PNG", ".png"), ("GIF", ".gif")])
def test_identifies_real_images(fmt: str, ext: str) -> None:
    info = identify(make_image(fmt, (33, 21)), LIMIT)
    assert (info.format, info.extension, info.width, info.height) == (fmt, ext, 33, 21)


def test_an_animated_gif_is_a_gif() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "green", "blue")]
    out = BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert identify(out.getvalue(), LIMIT).format == "GIF"


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF", "ICO"])
def test_other_formats_are_refused(fmt: str) -> None:
    with pytest.raises(UnsupportedImage):
        identify(make_image(fmt, (16, 16)), LIMIT)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
def test_truncated_files_are_refused(fmt: str) -> None:
    data = make_image(fmt, (200, 200))
    with pytest.raises(UnsupportedImage):
        identify(data[: len(data) // 2], LIMIT)


def test_a_png_with_a_broken_checksum_is_refused() -> None:
    data = bytearray(make_image("PNG", (20, 20)))
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF  # flip a byte inside the compressed pixels; the CRC no longer fits
    with pytest.raises(UnsupportedImage):
        identify(bytes(data), LIMIT)


@pytest.mark.parametrize(
    "data", [b"", b"GIF89a", b"\x89PNG\r\n\x1a\n", b"<svg xmlns='http://www.w3.org/2000/svg'/>"]
)
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedImage):
        identify(data, LIMIT)


def test_too_many_pixels_is_refused_without_decoding() -> None:
    out = BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")
    with pytest.raises(ImageTooManyPixels, match="10000×10000"):
        identify(out.getvalue(), 1_000_000)


# --- prepare_upload: the check, and the bytes to store ---------------------------------


def test_the_location_is_stripped_and_the_rest_kept() -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (55.0, 45.0, 21.0)}
    out = BytesIO()
    Image.new("RGB", (900, 600), "green").save(out, "JPEG", exif=exif.tobytes())
    info, stripped = prepare_upload(out.getvalue(), LIMIT, True)
    assert (info.format, info.width, info.height) == ("JPEG", 900, 600)
    assert stripped is not None and len(stripped) < len(out.getvalue())
    with Image.open(BytesIO(stripped)) as img:
        assert img.getexif().get_ifd(0x8825) == {}
        assert img.getexif().get(0x010F) == "PhoneMaker"
    # Not asked to strip, or nothing to strip: store the bytes as sent.
    assert prepare_upload(out.getvalue(), LIMIT, False)[1] is None
    assert prepare_upload(make_image("JPEG", (90, 60)), LIMIT, True)[1] is None


def test_an_animation_of_too_many_pixels_is_refused() -> None:
    frames = [Image.new("RGB", (600, 600), c) for c in ("red", "blue", "green", "white", "black")]
    out = BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(ImageTooManyPixels, match="5 frames"):
        prepare_upload(out.getvalue(), 400_000, True)
