"""Pure, synchronous Pillow work: the WebP thumbnails of an image that `server.imaging`
already verified. Call it off the event loop.

Speed matters here (every upload pays it): a JPEG is decoded straight at a reduced scale
(`Image.draft`, libjpeg's DCT scaling: 1/2, 1/4 or 1/8 of the pixels are ever produced) and
other formats are shrunk with `reduce()` before the final Lanczos step (`reducing_gap`).
An animated GIF gets a still of its first frame: a thumbnail is a preview, and an animated
WebP of every frame would cost far more time and bytes than the gallery should spend.
"""

from __future__ import annotations

from io import BytesIO

from PIL import Image, ImageOps

from server.formats import FORMATS, THUMB_SIDES
from server.models import Thumbnail

# WebP quality per long side. The 2x variant is only ever shown on dense screens, where
# compression artefacts are half the size; a lower quality keeps it close to the 1x bytes.
QUALITY = {THUMB_SIDES[0]: 80, THUMB_SIDES[1]: 70}
# Shrink with reduce() (fast box filter) to within this factor of the target, then Lanczos.
_REDUCING_GAP = 3.0


def _draft_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """The smallest size a JPEG may be decoded at and still give `side` on its long edge."""
    width, height = size
    scale = side / max(width, height)
    return max(1, int(width * scale)), max(1, int(height * scale))


def _displayable(img: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has transparency; upright as its EXIF orientation says
    (browsers honour the orientation when they show the original)."""
    img = ImageOps.exif_transpose(img)
    transparent = "A" in img.getbands() or "transparency" in img.info
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float greyscale: scale to 8 bits (convert() would clip at 255).
        img = img.convert("I").point(lambda v: v / 256).convert("L")
    return img.convert("RGBA" if transparent else "RGB")


def make_thumbnails(data: bytes, sides: tuple[int, ...] = THUMB_SIDES) -> list[Thumbnail]:
    """One WebP per long side in `sides`, never larger than the image itself."""
    biggest = max(sides)
    with Image.open(BytesIO(data), formats=FORMATS) as opened:
        if opened.format == "JPEG":
            opened.draft("RGB", _draft_size(opened.size, biggest))
        opened.load()  # a GIF stays on its first frame
        img = _displayable(opened)
    thumbnails: list[Thumbnail] = []
    for side in sorted(sides, reverse=True):  # each smaller one from the previous result
        img.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
        out = BytesIO()
        img.save(out, "WEBP", quality=QUALITY.get(side, 80), method=4)
        thumbnails.append(Thumbnail(side, img.width, img.height, out.getvalue()))
    return sorted(thumbnails, key=lambda t: sides.index(t.side))
