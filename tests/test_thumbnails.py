"""server.thumbnails: WebP at the measured settings, the right sizes, upright, first frame of a
GIF, never enlarged, both sizes from one decode."""

from __future__ import annotations

from io import BytesIO

import pytest
from PIL import Image, ImageChops, ImageStat

from server.formats import THUMB_SIDES
from server.thumbnails import QUALITY, RESAMPLE, WEBP_METHOD, fitted_size, make_thumbnails
from tests.images import make_image, make_photo


def opened(data: bytes) -> Image.Image:
    img = Image.open(BytesIO(data))
    img.load()
    return img


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
def test_a_large_image_gets_a_320_and_a_640_webp(fmt: str) -> None:
    thumbs = make_thumbnails(make_image(fmt, (2000, 1500)))
    assert [t.side for t in thumbs] == list(THUMB_SIDES) == [320, 640]
    assert [(t.width, t.height) for t in thumbs] == [(320, 240), (640, 480)]
    for thumb in thumbs:
        img = opened(thumb.data)
        assert img.format == "WEBP"
        assert img.size == (thumb.width, thumb.height)


def test_portrait_images_fit_the_long_side() -> None:
    thumbs = make_thumbnails(make_image("PNG", (600, 1800)))
    assert [(t.width, t.height) for t in thumbs] == [(107, 320), (213, 640)]


def test_small_images_are_never_enlarged() -> None:
    thumbs = make_thumbnails(make_image("PNG", (40, 30)))
    assert [(t.width, t.height) for t in thumbs] == [(40, 30), (40, 30)]


def test_a_photo_thumbnail_is_small_and_looks_like_the_photo() -> None:
    data = make_photo(2400, 1800)
    thumbs = make_thumbnails(data)
    assert all(len(t.data) < 60_000 for t in thumbs), [len(t.data) for t in thumbs]
    original = opened(data).resize((32, 24))
    small = opened(thumbs[0].data).convert("RGB").resize((32, 24))
    diff = sum(ImageStat.Stat(ImageChops.difference(original, small)).mean) / 3
    assert diff < 8, diff


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = BytesIO()
    Image.new("RGB", (800, 400), "red").save(out, "JPEG", exif=exif.tobytes())
    assert [(t.width, t.height) for t in make_thumbnails(out.getvalue())] == [
        (160, 320),
        (320, 640),
    ]


@pytest.mark.parametrize(("orientation", "where"), [(6, "top"), (8, "bottom"), (3, "right")])
def test_each_exif_turn_ends_up_upright(orientation: int, where: str) -> None:
    """The stored image's left half is red; the thumbnail shows it where the turn puts it."""
    img = Image.new("RGB", (800, 400), "blue")
    img.paste(Image.new("RGB", (400, 400), "red"), (0, 0))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    thumbs = make_thumbnails(out.getvalue())
    turned = orientation in (6, 8)
    assert [(t.width, t.height) for t in thumbs] == (
        [(160, 320), (320, 640)] if turned else [(320, 160), (640, 320)]
    )
    rgb = opened(thumbs[0].data).convert("RGB")
    w, h = rgb.size
    probe = {"top": (w // 2, h // 8), "bottom": (w // 2, h - h // 8), "right": (w - w // 8, h // 2)}
    r, _g, b = rgb.getpixel(probe[where])
    assert r > 200 and b < 60, (orientation, rgb.getpixel(probe[where]))


def test_an_animated_gif_becomes_a_still_of_its_first_frame() -> None:
    frames = [Image.new("RGB", (400, 400), c) for c in ("red", "blue", "green")]
    out = BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    (thumb, _) = make_thumbnails(out.getvalue())
    img = opened(thumb.data)
    assert getattr(img, "n_frames", 1) == 1
    r, g, b = img.convert("RGB").getpixel((100, 100))
    assert r > 200 and g < 60 and b < 60


def test_transparency_is_kept() -> None:
    out = BytesIO()
    Image.new("RGBA", (100, 100), (0, 0, 255, 0)).save(out, "PNG")
    (thumb, _) = make_thumbnails(out.getvalue())
    img = opened(thumb.data)
    assert img.mode == "RGBA" and img.getpixel((5, 5))[3] == 0


@pytest.mark.parametrize("mode", ["L", "LA", "P", "1", "I;16", "CMYK"])
def test_every_mode_pillow_opens_becomes_a_webp(mode: str) -> None:
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = BytesIO()
    Image.new(mode, (64, 48)).save(out, fmt)
    thumbs = make_thumbnails(out.getvalue())
    assert opened(thumbs[0].data).mode in ("RGB", "RGBA")


def test_jpegs_are_decoded_at_a_reduced_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    """Draft mode: a 4000 px JPEG is decoded at 1/4 scale, never at full size."""
    from PIL import JpegImagePlugin

    decoded: list[tuple[int, int]] = []
    load = JpegImagePlugin.JpegImageFile.load

    def spy(self: JpegImagePlugin.JpegImageFile) -> object:
        result = load(self)
        decoded.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    make_thumbnails(make_image("JPEG", (4000, 3000)))
    assert decoded and max(decoded[0]) == 1000


def test_both_thumbnails_come_from_one_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """One decode, at the 1/4 scale the 640 needs; the 320 is made from the 640."""
    from PIL import JpegImagePlugin

    decodes: list[tuple[int, int]] = []
    load = JpegImagePlugin.JpegImageFile.load

    def spy(self: JpegImagePlugin.JpegImageFile) -> object:
        pending = bool(self.tile)  # pixels still to decode (later calls are no-ops)
        result = load(self)
        if pending:
            decodes.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    thumbs = make_thumbnails(make_photo(4000, 3000))
    assert decodes == [(1000, 750)]
    assert [(t.width, t.height) for t in thumbs] == [(320, 240), (640, 480)]


def test_the_settings_are_lossy_webp_at_the_measured_method_and_qualities() -> None:
    """The settings chosen from bench/thumbnail_settings.py (docs/BENCHMARKS.md): a change
    to them is a change to the page weight and to every upload's cost, so it is deliberate."""
    assert (WEBP_METHOD, QUALITY, RESAMPLE) == (
        2,
        {320: 80, 640: 70},
        Image.Resampling.BICUBIC,
    )
    (small, large) = make_thumbnails(make_photo(1024, 768))
    for thumb in (small, large):
        with Image.open(BytesIO(thumb.data)) as img:
            assert img.format == "WEBP"
            # Lossy ("VP8 "), not lossless ("VP8L"): the RIFF chunk after the header.
            assert thumb.data[12:16] == b"VP8 "
    assert (small.width, small.height, large.width, large.height) == (320, 240, 640, 480)


def test_sizes_come_from_the_image_not_from_the_rounded_640() -> None:
    assert fitted_size((1000, 333), 640) == (640, 213)
    assert fitted_size((1000, 333), 320) == (320, 107)  # from 213 px it would be 106 or 107
    assert fitted_size((300, 200), 640) == (300, 200)
    assert fitted_size((5000, 3), 320) == (320, 1)
