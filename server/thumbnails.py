"""Pure, synchronous Pillow work: the WebP thumbnails of an image that `server.imaging`
already verified. Call it off the event loop.

Every upload pays for this, so each step is the cheapest the numbers allow (measured by
bench/thumbnail_settings.py, table in docs/BENCHMARKS.md "Thumbnail settings"):

- the image is decoded once for both sizes: a JPEG straight at the smallest of libjpeg's
  scales (1/2, 1/4, 1/8: `Image.draft`) that still has 640 px on the long side, which is
  exact (the DCT scaling averages the pixels it drops, nothing is enlarged afterwards);
- other formats are shrunk with `reduce()` (a box filter) to within `_REDUCING_GAP` of the
  target before the final filter;
- the 640 px is resized from that, and the 320 px from the 640 px result, with a bicubic
  filter: as close to Lanczos as makes no visible difference (about 50 dB PSNR), a third
  cheaper;
- WebP `method` 2: methods 3-6 search harder for 4-8% fewer bytes at two to five times
  the CPU time, methods 0-1 save little time for 20-30% more bytes.

(An upload's check, `server.imaging.prepare_upload`, decodes the file once more, at 1/8
scale, in a job of its own: sharing one decode between the check and the thumbnails was
measured, and lost more in the answer's latency than it saved; docs/BENCHMARKS.md.)

An animated GIF gets a still of its first frame: a thumbnail is a preview, and an animated
WebP of every frame would cost far more time and bytes than the gallery should spend.
"""

from __future__ import annotations

from io import BytesIO

from PIL import Image, ImageOps

from server.formats import FORMATS, THUMB_SIDES
from server.models import Thumbnail

WEBP_METHOD = 2
# WebP quality per long side. The 2x variant is only ever shown on dense screens, where
# compression artefacts are half the size; a lower quality keeps it close to the 1x bytes.
QUALITY = {THUMB_SIDES[0]: 80, THUMB_SIDES[1]: 70}
RESAMPLE = Image.Resampling.BICUBIC
# Shrink with reduce() (fast box filter) to within this factor of the target, then RESAMPLE.
_REDUCING_GAP = 3.0
_ORIENTATION = 0x0112
_HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "F")


def fitted_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """`size` scaled to `side` on its long edge, the aspect kept; never enlarged."""
    width, height = size
    longest = max(width, height)
    if longest <= side:
        return size
    return max(1, round(width * side / longest)), max(1, round(height * side / longest))


def _displayable(img: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has transparency; upright as its EXIF orientation says
    (browsers honour the orientation when they show the original). `img` itself when it is
    that already: no copy."""
    if img.getexif().get(_ORIENTATION, 1) != 1:
        img = ImageOps.exif_transpose(img)
    transparent = "A" in img.getbands() or "transparency" in img.info
    if img.mode in _HIGH_DEPTH_MODES:
        # 16-bit and float greyscale: scale to 8 bits (convert() would clip at 255).
        img = img.convert("I").point(lambda v: v / 256).convert("L")
    mode = "RGBA" if transparent else "RGB"
    return img if img.mode == mode else img.convert(mode)


def _encode(source: Image.Image, sides: tuple[int, ...] = THUMB_SIDES) -> list[Thumbnail]:
    """One WebP per long side in `sides` (in that order) from a `_displayable` image: the
    largest resized from `source`, each smaller one from the previous result."""
    thumbnails: dict[int, Thumbnail] = {}
    img = source
    for side in sorted(sides, reverse=True):
        size = fitted_size(source.size, side)
        if img.size != size:
            img = img.resize(size, RESAMPLE, reducing_gap=_REDUCING_GAP)
        out = BytesIO()
        img.save(out, "WEBP", quality=QUALITY.get(side, 80), method=WEBP_METHOD)
        thumbnails[side] = Thumbnail(side, img.width, img.height, out.getvalue())
    return [thumbnails[side] for side in sides]


def make_thumbnails(data: bytes, sides: tuple[int, ...] = THUMB_SIDES) -> list[Thumbnail]:
    """One WebP per long side in `sides`, in that order, never larger than the image."""
    with Image.open(BytesIO(data), formats=FORMATS) as opened:
        if opened.format == "JPEG":
            # libjpeg picks the smallest of its scales at least this big: the largest
            # thumbnail is never enlarged.
            opened.draft("RGB", fitted_size(opened.size, max(sides)))
        opened.load()  # a GIF stays on its first frame
        return _encode(_displayable(opened), sides)
