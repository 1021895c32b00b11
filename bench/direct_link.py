"""`make bench` (2): direct-link GETs of an uploaded image and of its thumbnail through nginx,
against nginx serving a copy of the same bytes as a plain static file, in the same run."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import bench_stack, fmt_ratio, postgres, publish, wrk
from bench.photos import LARGE, photographs
from bench.reference import reference_site


def upload(client: httpx.Client, data: bytes) -> dict:
    """Upload a photo; its image object once its thumbnails exist (they follow the answer)."""
    response = client.post(
        "/upload/",
        files={"file": ("photo.jpg", data, "image/jpeg")},
        headers={"X-XSRFToken": client.cookies["_xsrf"], "Accept": "application/json"},
    )
    response.raise_for_status()
    image = response.json()
    deadline = time.monotonic() + 60
    while image["thumb_url"] is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no thumbnails for image {image['id']} after 60 s")
        time.sleep(0.05)
        page = client.get("/images/", headers={"Accept": "application/json"}).json()
        image = next(i for i in page["images"] if i["id"] == image["id"])
    return image


def page_weight(client: httpx.Client) -> tuple[int, int, int]:
    """Upload 12 photos (12 MP camera files, the five sample photos in turn); the bytes of
    the originals and of the tile images a browser fetches for page 1 at 1x and at 2x pixel
    density."""
    originals = 0
    photos = list(photographs(*LARGE).values())
    for n in range(12):
        data = photos[n % len(photos)]
        originals += len(data)
        upload(client, data)
    images = client.get("/images/", headers={"Accept": "application/json"}).json()["images"]
    one_x = sum(len(client.get(i["thumb_url"]).content) for i in images)
    two_x = sum(len(client.get(i["thumb_2x_url"]).content) for i in images)
    return originals, one_x, two_x


def run(seconds: float) -> str:
    photo = photographs((1100, 825), 90, names=("chelsea.png",))["chelsea.png"]
    rows = []
    with postgres() as database_url, bench_stack(2, database_url) as stack:
        with httpx.Client(base_url=stack.url, timeout=60) as client:
            client.get("/upload/").raise_for_status()
            originals, one_x, two_x = page_weight(client)
            image = upload(client, photo)
            thumb = client.get(image["thumb_url"]).content
        with tempfile.TemporaryDirectory() as static:
            Path(static, "photo.jpg").write_bytes(photo)
            Path(static, "thumb.webp").write_bytes(thumb)
            Path(static).chmod(0o755)
            with reference_site(1, Path(static)) as ref:
                for label, url, ref_url, size in (
                    ("image (direct link)", image["url"], f"{ref}/static/photo.jpg", len(photo)),
                    (
                        "thumbnail, 320 px",
                        image["thumb_url"],
                        f"{ref}/static/thumb.webp",
                        len(thumb),
                    ),
                ):
                    # Interleaved, best of two each: the machine is shared, so one run alone
                    # can catch a neighbour's burst.
                    runs = [wrk(u, seconds=seconds / 2) for _ in range(2) for u in (url, ref_url)]
                    ours = max(runs[0::2], key=lambda r: r.requests_per_second)
                    theirs = max(runs[1::2], key=lambda r: r.requests_per_second)
                    rows.append(
                        f"| {label} | {size / 1024:,.0f} KB | {ours.requests_per_second:,.0f} "
                        f"| {ours.p50_ms:.2f} / {ours.p99_ms:.2f} "
                        f"| {theirs.requests_per_second:,.0f} "
                        f"| {theirs.p50_ms:.2f} / {theirs.p99_ms:.2f} "
                        f"| {fmt_ratio(ours.requests_per_second, theirs.requests_per_second)} |"
                    )
    return "\n".join(
        [
            "## Direct links (`make bench`, 2)",
            "",
            f"GET of an uploaded JPEG and of its WebP thumbnail through the stack's nginx, against "
            f"nginx serving a copy of the same bytes from `/static/` (bench/reference.py, same "
            f"template), both measured in this run; wrk, 1 thread, 32 connections, best of two "
            f"interleaved runs of {seconds / 2:g} s each.",
            "",
            "| file | size | req/s | p50 / p99 ms | static file req/s (reference) "
            "| p50 / p99 ms | ratio |",
            "|---|---:|---:|---|---:|---|---:|",
            *rows,
            "",
            "- Target: equal to nginx serving a static file (it is nginx: `alias` + `sendfile`, "
            "no backend involved). Differences of a few percent are run-to-run noise.",
            "",
            "### Weight of a gallery page",
            "",
            "12 camera-sized JPEGs (4000×3000, q99 4:4:4: scikit-image's five sample photos "
            "in turn, bench/photos.py) uploaded, then the images of page 1 fetched as a "
            "browser would:",
            "",
            "| what the page shows | bytes of images |",
            "|---|---:|",
            f"| the originals (before thumbnails) | {originals / 1048576:,.1f} MiB |",
            f"| thumbnails, 1x (320 px) | {one_x / 1024:,.0f} KB |",
            f"| thumbnails, 2x (640 px, dense screens) | {two_x / 1024:,.0f} KB |",
            "",
            "- Target: ≤ 400 KB of images for a page of 12 photos: "
            + ("met" if max(one_x, two_x) <= 400 * 1024 else "NOT met")
            + " at both densities (tests/test_thumbnails_http.py asserts it on every test run). "
            "The sample photos are small and scaled up, so they are smoother than a camera's: "
            "photos with more fine detail make thumbnails a little larger (section "
            '"Thumbnail settings").',
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    body = run(args.seconds)
    publish("bench-direct", body, write=not args.no_write)


if __name__ == "__main__":
    main()
