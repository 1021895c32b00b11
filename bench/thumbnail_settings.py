"""`make bench` (8): what a thumbnail costs, setting by setting, on real photographs.

scikit-image's sample photos (bench/photos.py) as 1024×768 JPEGs at quality 85, the upload
of the issue's targets, and as 4000×3000 camera-sized JPEGs. Measured in this process, one
step at a time, as CPU time (`time.process_time`, the median of several runs per photo, then
the mean over the photos), so the load of other programs on the machine moves the figures
less than wall time would:

1. WebP `method` 0-6 × quality, for the 640 px (2x) thumbnail and for the 320 px one made
   from it: bytes, CPU ms, and PSNR against the unencoded thumbnail (how much the encoding
   lost; higher is closer).
2. The resampling filter down to 640 px and 640 → 320: CPU ms, PSNR against Lanczos, bytes.
3. Decoding the JPEG in full or at libjpeg's reduced scales (`draft`), and what needs each.
4. All of an upload's image work, as the server did it before and as it does it now
   (`server.imaging.prepare_upload`, then `server.thumbnails.make_thumbnails`), with the
   640 made at upload or on demand.

The settings the server uses are `server.thumbnails.WEBP_METHOD`, `QUALITY` and `RESAMPLE`;
this prints the table they were chosen from."""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from io import BytesIO

from PIL import Image, ImageChops, ImageStat

from bench.common import publish
from bench.photos import LARGE, SMALL, describe, photographs
from server import imaging, thumbnails
from server.formats import THUMB_SIDES

METHODS = range(7)
QUALITIES = (60, 70, 80)
FILTERS = {
    "Lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
}
SMALL_SIDE, LARGE_SIDE = THUMB_SIDES
# tests/test_thumbnails_http.py: a gallery page of 12 photos may weigh this much in images.
PAGE_BUDGET = 400 * 1024
TILES = 12
MAX_PIXELS = 50_000_000


def cpu_ms(runs: int, fn: Callable[..., object], *args: object) -> float:
    """The median CPU time of `fn(*args)` over `runs` calls, in ms."""
    times = []
    for _ in range(runs):
        started = time.process_time()
        fn(*args)
        times.append(time.process_time() - started)
    return statistics.median(times) * 1000


def webp(img: Image.Image, quality: int, method: int) -> bytes:
    out = BytesIO()
    img.save(out, "WEBP", quality=quality, method=method)
    return out.getvalue()


def psnr(reference: Image.Image, encoded: bytes) -> float:
    with Image.open(BytesIO(encoded)) as img:
        decoded = img.convert("RGB")
    mse = statistics.fmean(
        v**2 for v in ImageStat.Stat(ImageChops.difference(reference, decoded)).rms
    )
    return 10 * math.log10(255**2 / mse) if mse else math.inf


def decoded(data: bytes, scale: int = 1) -> Image.Image:
    with Image.open(BytesIO(data)) as img:
        if scale > 1:
            img.draft("RGB", (img.width // scale, img.height // scale))
        img.load()
        return img.copy()


def fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    return thumbnails.fitted_size(size, side)


def old_upload_work(data: bytes) -> None:
    """What the server did per upload before this round: identify() (structure check, then a
    decode at 1/8 scale), then, in a second job, a decode at the 640's draft scale, Lanczos
    to 640, WebP method 4 at quality 70, Lanczos 640 → 320, WebP method 4 at quality 80."""
    imaging.identify(data, MAX_PIXELS)
    with Image.open(BytesIO(data)) as img:
        img.draft("RGB", fit(img.size, LARGE_SIDE))
        img.load()
        source = img.convert("RGB")
    for side, quality in ((LARGE_SIDE, 70), (SMALL_SIDE, 80)):
        source.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=3.0)
        webp(source, quality, 4)


def settings_rows(
    smalls: dict[str, bytes], runs: int
) -> tuple[list[str], dict[tuple[int, int, int], float]]:
    """Rows of the method × quality table, and the mean bytes per (method, quality, side)."""
    sources: list[dict[int, Image.Image]] = []
    for data in smalls.values():
        img = decoded(data)
        big = img.resize(fit(img.size, LARGE_SIDE), thumbnails.RESAMPLE)
        sources.append(
            {
                LARGE_SIDE: big,
                SMALL_SIDE: big.resize(fit(img.size, SMALL_SIDE), thumbnails.RESAMPLE),
            }
        )
    rows, sizes = [], {}
    for method in METHODS:
        for quality in QUALITIES:
            cells = []
            for side in (LARGE_SIDE, SMALL_SIDE):
                made = [webp(s[side], quality, method) for s in sources]
                ms = [cpu_ms(runs, webp, s[side], quality, method) for s in sources]
                db = [psnr(s[side], m) for s, m in zip(sources, made, strict=True)]
                sizes[method, quality, side] = statistics.fmean(len(m) for m in made)
                used = method == thumbnails.WEBP_METHOD and quality == thumbnails.QUALITY[side]
                bold = "**" if used else ""
                cells.append(
                    f"{bold}{sizes[method, quality, side] / 1024:.1f}{bold} "
                    f"| {bold}{statistics.fmean(ms):.1f}{bold} | {statistics.fmean(db):.1f}"
                )
            rows.append(f"| {method} | {quality} | {cells[0]} | {cells[1]} |")
    return rows, sizes


# (photo size, libjpeg scale) -> what needs a decode at that scale
DECODES = {
    ("1024×768", 1): "the 640 and the 320 (at 1/2 the photo would be 512 px wide)",
    ("1024×768", 2): "the 320 alone (if the 640 were made on demand)",
    ("1024×768", 8): "the upload's check (`identify`)",
    ("4000×3000", 1): "nothing (no draft)",
    ("4000×3000", 4): "the 640 and the 320",
    ("4000×3000", 8): "the upload's check; the 320 alone",
}


def decode_rows(smalls: dict[str, bytes], larges: dict[str, bytes], runs: int) -> list[str]:
    rows = []
    for (label, scale), use in DECODES.items():
        photos = smalls if label == "1024×768" else larges
        ms = [cpu_ms(runs, decoded, d, scale) for d in photos.values()]
        width, height = decoded(next(iter(photos.values())), scale).size
        rows.append(
            f"| {label} JPEG at 1/{scale} ({width}×{height}) | {use} | {statistics.fmean(ms):.1f} |"
        )
    return rows


def filter_rows(smalls: dict[str, bytes], runs: int) -> list[str]:
    """Each resampling filter: its CPU time, how far its result is from Lanczos's (PSNR of
    the unencoded thumbnails), and the bytes of its WebP with the settings used."""
    images = [decoded(d) for d in smalls.values()]
    lanczos = {
        side: [i.resize(fit(i.size, side), Image.Resampling.LANCZOS) for i in images]
        for side in THUMB_SIDES
    }
    rows = []
    for side, label in ((LARGE_SIDE, "1024×768 → 640×480"), (SMALL_SIDE, "640×480 → 320×240")):
        for name, resample in FILTERS.items():
            starts = images if side == LARGE_SIDE else lanczos[LARGE_SIDE]
            ms = [cpu_ms(runs, i.resize, fit(i.size, side), resample) for i in starts]
            made = [i.resize(fit(i.size, side), resample) for i in starts]
            db = [psnr(ref, _png(m)) for ref, m in zip(lanczos[side], made, strict=True)]
            size = [len(webp(m, thumbnails.QUALITY[side], thumbnails.WEBP_METHOD)) for m in made]
            mark = " **(used)**" if resample == thumbnails.RESAMPLE else ""
            same = "same" if resample == Image.Resampling.LANCZOS else f"{statistics.fmean(db):.1f}"
            rows.append(
                f"| {label}, {name}{mark} | {statistics.fmean(ms):.1f} | {same} "
                f"| {statistics.fmean(size) / 1024:.1f} |"
            )
    return rows


def _png(img: Image.Image) -> bytes:
    out = BytesIO()
    img.save(out, "PNG", compress_level=0)
    return out.getvalue()


def upload_work(data: bytes, sides: tuple[int, ...] = THUMB_SIDES) -> None:
    """What the server does per upload now: the check (`imaging.prepare_upload`: structure,
    a decode at 1/8 scale, the location stripped) in one job, the thumbnails in another."""
    imaging.prepare_upload(data, MAX_PIXELS, True)
    thumbnails.make_thumbnails(data, sides)


def pipeline_rows(smalls: dict[str, bytes], larges: dict[str, bytes], runs: int) -> list[str]:
    rows = []
    for label, photos in (("1024×768 q85", smalls), ("4000×3000 q99 4:4:4", larges)):
        n = runs if label.startswith("1024") else max(2, runs // 3)
        measured = [
            [cpu_ms(n, old_upload_work, d) for d in photos.values()],
            [cpu_ms(n, upload_work, d) for d in photos.values()],
            [cpu_ms(n, imaging.prepare_upload, d, MAX_PIXELS, True) for d in photos.values()],
            [cpu_ms(n, upload_work, d, (SMALL_SIDE,)) for d in photos.values()],
            [cpu_ms(n, thumbnails.make_thumbnails, d, (LARGE_SIDE,)) for d in photos.values()],
        ]
        before, now, check, small_only, on_demand = (statistics.fmean(v) for v in measured)
        rows.append(
            f"| {label} | {before:.1f} | {now:.1f} ({now / before:.0%}) | {check:.1f} "
            f"| {small_only:.1f} ({small_only / before:.0%}) | {on_demand:.1f} |"
        )
    return rows


def run(runs: int = 5) -> str:
    smalls = photographs(*SMALL)
    larges = photographs(*LARGE)
    settings, sizes = settings_rows(smalls, runs)
    filters = filter_rows(smalls, runs)
    decodes = decode_rows(smalls, larges, max(2, runs // 2))
    pipeline = pipeline_rows(smalls, larges, runs)
    method = thumbnails.WEBP_METHOD
    page = {side: TILES * sizes[method, thumbnails.QUALITY[side], side] for side in THUMB_SIDES}
    return "\n".join(
        [
            "## Thumbnail settings (`make bench`, 8)",
            "",
            f"scikit-image's sample photos as 1024×768 JPEGs q85 ({describe(smalls)}) and as "
            f"4000×3000 q99 4:4:4 ({describe(larges)}), made by bench/photos.py. CPU time "
            f"of this one process (median of {runs} runs per photo, mean over the photos); "
            "PSNR against the thumbnail before encoding (dB, higher is closer). The settings "
            "the server uses (server/thumbnails.py) are in bold.",
            "",
            "### 1. WebP method × quality",
            "",
            "The 640 px thumbnail resized from the decoded 1024×768 photo, the 320 px from that "
            "640, both with the filter the server uses; then each encoded.",
            "",
            "| method | quality | 640: KB | 640: CPU ms | 640: PSNR | 320: KB | 320: CPU ms "
            "| 320: PSNR |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            *settings,
            "",
            f"- A gallery page of {TILES} such photos with the settings used: "
            f"{page[SMALL_SIDE] / 1024:.0f} KB of thumbnails at 1x, "
            f"{page[LARGE_SIDE] / 1024:.0f} KB at 2x (budget {PAGE_BUDGET // 1024} KB, "
            "tests/test_thumbnails_http.py).",
            "",
            "### 2. Resampling filter",
            "",
            "PSNR of each filter's result against Lanczos's (both unencoded); KB of its WebP "
            "with the method and quality used.",
            "",
            "| resize | CPU ms | PSNR vs Lanczos | WebP KB |",
            "|---|---:|---:|---:|",
            *filters,
            "",
            "### 3. Decoding",
            "",
            "| decode | what needs it | CPU ms |",
            "|---|---|---:|",
            *decodes,
            "",
            "### 4. All of an upload's image work",
            "",
            "Before this round: the check (`identify`: a decode at 1/8 scale), then the "
            "thumbnails' own decode, Lanczos and WebP method 4 (q70 for the 640, q80 for the "
            "320). Now: the same check, then one decode for both thumbnails and the settings "
            "above. *Of which the check* is what sharing one decode between the check and the "
            "thumbnails would save at most. The last two columns are what making the 640 on "
            "demand would change: the upload's work without it, and what the first request "
            "for a 640 would then cost (the stored original decoded again, resized, encoded).",
            "",
            "| upload | before, CPU ms | now, CPU ms | of which the check | now without the 640 "
            "| a 640 made on demand |",
            "|---|---:|---:|---:|---:|---:|",
            *pipeline,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    publish("bench-thumbnail-settings", run(args.runs), write=not args.no_write)


if __name__ == "__main__":
    main()
