"""`make bench` (6): uploads of real photographs, counting all the work. scikit-image's sample
photos (coffee, chelsea, astronaut, rocket; taken from its wheel as scripts/screenshots.py
does) scaled to 1024×768 JPEG q85 (~190 KB) and to 4000×3000 (the 5 MB row):

- one client, sequential uploads: p50 latency (the answer comes before the thumbnails);
- 8 clients through nginx to 2 backends for a fixed time, then the *drain* until every image
  has both thumbnails recorded: uploads/s = images / (upload time + drain time);
- event-loop lag p99 of each backend while 8 clients upload the 4000×3000 photos.

References, measured in the same run: the same POSTs to a constant Tornado handler behind the
same nginx (bench/reference.py)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
import zipfile
from io import BytesIO
from pathlib import Path

import httpx
import psycopg
from PIL import Image, ImageOps

from bench.common import bench_stack, fmt_ratio, postgres, publish, summary
from bench.reference import reference_site
from bench.uploads import CLIENTS, hammer, lag_reports, multipart
from scripts.screenshots import photo_wheel

PHOTOS = ("coffee.png", "chelsea.png", "astronaut.png", "rocket.jpg")


def photographs(size: tuple[int, int], quality: int) -> list[bytes]:
    """The sample photos, scaled (and cropped to the aspect) to `size`, as JPEGs."""
    out = []
    with zipfile.ZipFile(photo_wheel()) as wheel:
        for name in PHOTOS:
            with Image.open(BytesIO(wheel.read(f"skimage/data/{name}"))) as img:
                rgb = img.convert("RGB")
                fitted = ImageOps.fit(rgb, size, Image.Resampling.LANCZOS)
                buf = BytesIO()
                fitted.save(buf, "JPEG", quality=quality)
                out.append(buf.getvalue())
    return out


def lacking_thumbnails(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM images WHERE thumb_width IS NULL").fetchone()
        assert row is not None
        return int(row[0])


def image_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM images").fetchone()
        assert row is not None
        return int(row[0])


async def sequential(url: str, headers: dict[str, str], bodies: list[bytes], n: int) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(timeout=60) as http:
        for i in range(n):
            started = time.perf_counter()
            response = await http.post(url, content=bodies[i % len(bodies)], headers=headers)
            response.raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def _headers(content_type: str, cookies: str = "", xsrf: str = "") -> dict[str, str]:
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    if xsrf:
        headers |= {"Cookie": cookies, "X-XSRFToken": xsrf}
    return headers


async def run(seconds: float) -> str:
    small = [multipart(p) for p in photographs((1024, 768), 85)]
    large = [multipart(p) for p in photographs((4000, 3000), 92)]
    small_kb = sum(len(b) for b, _ in small) / len(small) / 1024
    large_mb = sum(len(b) for b, _ in large) / len(large) / 1048576
    result: dict[str, float] = {}
    with postgres() as database_url, bench_stack(2, database_url, log_level="INFO") as stack:
        pids = stack.backend_pids()
        async with httpx.AsyncClient(base_url=stack.url) as http:
            (await http.get("/upload/")).raise_for_status()
            cookies = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
            xsrf = http.cookies["_xsrf"]
        url = f"{stack.url}/upload/"
        body, ctype = small[0]
        seq = await sequential(url, _headers(ctype, cookies, xsrf), [body], 60)
        result["seq_p50"] = summary(seq[10:])["p50"]
        while lacking_thumbnails(database_url):
            await asyncio.sleep(0.1)
        before = image_count(database_url)
        started = time.perf_counter()
        ok = await hammer(url, _headers(ctype, cookies, xsrf), body, seconds)
        uploaded_at = time.perf_counter()
        while lacking_thumbnails(database_url):
            await asyncio.sleep(0.02)
        drained_at = time.perf_counter()
        assert image_count(database_url) - before == len(ok)
        result["rate"] = len(ok) / (drained_at - started)
        result["drain_s"] = drained_at - uploaded_at
        result["rate_answers"] = len(ok) / (uploaded_at - started)
        big, big_type = large[0]
        for pid in pids:
            os.kill(pid, signal.SIGUSR1)
        await asyncio.sleep(0.3)
        mark = len(stack.log)
        await hammer(url, _headers(big_type, cookies, xsrf), big, seconds)
        for pid in pids:
            os.kill(pid, signal.SIGUSR1)
        await asyncio.sleep(0.5)
        lags = lag_reports(stack.log, mark)
        result["lag_p99"] = max(p99 for _p50, p99, _max in lags.values())
    with tempfile.TemporaryDirectory() as static, reference_site(2, Path(static)) as ref:
        seq = await sequential(f"{ref}/upload/", _headers(ctype), [body], 60)
        result["ref_seq_p50"] = summary(seq[10:])["p50"]
        ref_ok = await hammer(f"{ref}/upload/", _headers(ctype), body, seconds)
        result["ref_rate"] = len(ref_ok) / seconds
    r = result
    lag_text = "; ".join(f"{w}: {p99:.1f}" for w, (_a, p99, _b) in sorted(lags.items()))
    return "\n".join(
        [
            "## Uploads of photographs, all the work counted (`make bench`, 6)",
            "",
            f"scikit-image's sample photos {', '.join(PHOTOS)} (from its wheel), scaled to "
            f"1024×768 JPEG q85 (this run: {small_kb:.0f} KB, the coffee photo) and 4000×3000 "
            f"q92 ({large_mb:.1f} MB). 2 backends behind nginx; references: a constant Tornado "
            "handler behind the same nginx, same run. The machine was shared with other test "
            "suites during the run: compare the ratios, not the absolute figures.",
            "",
            "| measurement | ImageHosting | reference | ratio |",
            "|---|---:|---:|---:|",
            f"| sequential upload p50, 1 client (ms) | {r['seq_p50']:.1f} | {r['ref_seq_p50']:.1f} "
            f"| {r['seq_p50'] / r['ref_seq_p50']:.1f}× |",
            f"| uploads/s, {CLIENTS} clients, {seconds:g} s + drain of the thumbnails "
            f"({r['drain_s']:.1f} s) | {r['rate']:.1f} | {r['ref_rate']:.1f} "
            f"| {fmt_ratio(r['rate'], r['ref_rate'])} |",
            f"| answers/s in the same run, before the drain | {r['rate_answers']:.1f} | | |",
            f"| loop lag p99, 8 clients uploading 4000×3000 (ms, per backend) | {lag_text} | | |",
            "",
            f"- Target ≥ 100 uploads/s with the drain: {'met' if r['rate'] >= 100 else 'NOT met'}"
            f" ({r['rate']:.1f}/s).",
            f"- Target sequential p50 ≤ 25 ms: {'met' if r['seq_p50'] <= 25 else 'NOT met'}"
            f" ({r['seq_p50']:.1f} ms).",
            f"- Target loop lag p99 ≤ 20 ms at 5 MB: {'met' if r['lag_p99'] <= 20 else 'NOT met'}"
            f" (worst backend {r['lag_p99']:.1f} ms).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    publish("bench-photo-uploads", asyncio.run(run(args.seconds)), write=not args.no_write)


if __name__ == "__main__":
    main()
