"""Real photographs for the benchmarks: scikit-image's sample photos, taken from its wheel
(downloaded once by scripts/screenshots.py's `photo_wheel`), scaled and cropped to a size and
saved as JPEGs. Photos, not noise or flat colours: noise is the worst case for WebP and for
JPEG, a flat colour the best, and neither says what a gallery of photos costs."""

from __future__ import annotations

import zipfile
from io import BytesIO

from PIL import Image, ImageOps

from scripts.screenshots import photo_wheel

# The wheel's skimage/data/ files that are photographs of the world (the others are
# microscope slides, textures, test charts and greyscale).
PHOTOS = ("coffee.png", "chelsea.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png")
# What an upload of a photo looks like in the targets: 1024×768 at quality 85 ...
SMALL = ((1024, 768), 85, 2)
# ... and a large camera file: 12 megapixels. The sample photos are small (at most 741 px
# wide), so scaled up they are smooth and compress well; quality 99 without chroma
# subsampling (4:4:4) brings them to 2.8-4.7 MiB, the size of a real camera JPEG.
LARGE = ((4000, 3000), 99, 0)


def photographs(
    size: tuple[int, int], quality: int, subsampling: int = 2, names: tuple[str, ...] = PHOTOS
) -> dict[str, bytes]:
    """Photo name -> JPEG bytes of that photo scaled (and cropped to the aspect) to `size`.
    `subsampling` is Pillow's: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0 (its default)."""
    out = {}
    with zipfile.ZipFile(photo_wheel()) as wheel:
        for name in names:
            with Image.open(BytesIO(wheel.read(f"skimage/data/{name}"))) as img:
                fitted = ImageOps.fit(img.convert("RGB"), size, Image.Resampling.LANCZOS)
            buf = BytesIO()
            fitted.save(buf, "JPEG", quality=quality, subsampling=subsampling)
            out[name] = buf.getvalue()
    return out


def describe(photos: dict[str, bytes]) -> str:
    """'coffee.png 123 KB, chelsea.png 96 KB, ...' (KiB below 1 MiB, else MiB)."""
    return ", ".join(f"{name} {size_text(len(data))}" for name, data in photos.items())


def size_text(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size < 1048576 else f"{size / 1048576:.1f} MB"
