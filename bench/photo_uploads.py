"""`make bench` (6): uploads of real photographs, counting all the work. scikit-image's sample
photos (bench/photos.py, from its wheel): the coffee photo scaled to 1024×768 JPEG q85 and to
4000×3000 JPEG q99 4:4:4 (a 12-megapixel camera file of about 4 MB):

- one client, sequential uploads: p50 latency (the answer comes before the thumbnails);
- 8 clients through nginx to 2 backends for a fixed time, then the *drain* until every image
  has both thumbnails recorded: uploads/s = images / (upload time + drain time);
- event-loop lag p99 of each backend while 8 clients upload the 4000×3000 photo;
- for both runs, where the CPU time went per upload: every process this benchmark started,
  read from /proc before and after (bench/cpu.py), grouped by what it is, and what the whole
  machine spent meanwhile (other programs on a shared machine included).

References, measured in the same run: the same POSTs to a constant Tornado handler behind the
same nginx (bench/reference.py)."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

from bench.common import bench_stack, fmt_ratio, postgres, publish, summary
from bench.cpu import Snapshot, cpu_by_group, loop_thread_times, snapshot
from bench.photos import LARGE, SMALL, photographs, size_text
from bench.reference import reference_site
from bench.uploads import CLIENTS, hammer, lag_while, multipart, upload_headers, visitor

PHOTO = "coffee.png"
# The groups of processes whose CPU time is reported per upload, in the table's order.
GROUPS = (
    "image workers (decode, check, thumbnails)",
    "backends (event loop, multipart parse, file writes)",
    "PostgreSQL",
    "nginx",
    "benchmark client (httpx, this process)",
    "other processes of the stack",
)


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


async def sequential_p50(
    site: str, database_url: str, body: bytes, content_type: str
) -> tuple[str, str, float]:
    """A visitor's cookies and XSRF token, and the p50 of 50 uploads of `body` one after the
    other (after 10 to warm up), once their thumbnails are all made."""
    cookies, xsrf = await visitor(site)
    headers = upload_headers(content_type, cookies, xsrf)
    seq = await sequential(f"{site}/upload/", headers, [body], 60)
    while lacking_thumbnails(database_url):
        await asyncio.sleep(0.1)
    return cookies, xsrf, summary(seq[10:])["p50"]


def _grouping(backends: set[int]) -> Callable[[int, int, str], str]:
    me = os.getpid()

    def group(pid: int, parent: int, name: str) -> str:
        if pid == me:
            return GROUPS[4]
        if name == "nginx":
            return GROUPS[3]
        if name == "postgres":
            return GROUPS[2]
        if pid in backends:
            return GROUPS[1]
        if parent in backends:
            return GROUPS[0]
        return GROUPS[5]

    return group


def _cpu_per_upload(
    before: Snapshot, after: Snapshot, backends: set[int], uploads: int
) -> tuple[dict[str, float], float, float]:
    """CPU ms per upload by group; the machine's busy CPU ms per upload; its capacity used."""
    spent, busy, capacity = cpu_by_group(before, after, _grouping(backends))
    per = {g: spent.get(g, 0.0) * 1000 / uploads for g in GROUPS}
    return per, busy * 1000 / uploads, busy / capacity


async def run(seconds: float) -> str:
    small = photographs(*SMALL, names=(PHOTO,))[PHOTO]
    large = photographs(*LARGE, names=(PHOTO,))[PHOTO]
    small_body, ctype = multipart(small)
    large_body, large_type = multipart(large)
    r: dict[str, float] = {}
    with postgres() as database_url, bench_stack(2, database_url, log_level="INFO") as stack:
        pids = stack.backend_pids()
        url = f"{stack.url}/upload/"
        cookies, xsrf, r["seq_p50"] = await sequential_p50(
            stack.url, database_url, small_body, ctype
        )
        before = image_count(database_url)
        cpu_before = snapshot()
        started = time.perf_counter()
        ok = await hammer(url, upload_headers(ctype, cookies, xsrf), small_body, seconds)
        uploaded_at = time.perf_counter()
        while lacking_thumbnails(database_url):
            await asyncio.sleep(0.02)
        drained_at = time.perf_counter()
        cpu_small = _cpu_per_upload(cpu_before, snapshot(), set(pids), len(ok))
        assert image_count(database_url) - before == len(ok)
        r["rate"] = len(ok) / (drained_at - started)
        r["drain_s"] = drained_at - uploaded_at
        r["rate_answers"] = len(ok) / (uploaded_at - started)
        r["p50"], r["p99"] = summary(ok)["p50"], summary(ok)["p99"]
        # The lag's reference: the same backends with nothing to do, on the same machine.
        _, idle = await lag_while(stack.log, pids, asyncio.sleep(seconds / 2))
        cpu_before = snapshot()
        sched_before = {pid: loop_thread_times(pid) for pid in pids}
        big_started = time.perf_counter()
        big, lags = await lag_while(
            stack.log,
            pids,
            hammer(url, upload_headers(large_type, cookies, xsrf), large_body, seconds),
        )
        big_wall = time.perf_counter() - big_started
        waits = {
            pid: [a - b for a, b in zip(loop_thread_times(pid), sched_before[pid], strict=True)]
            for pid in pids
        }
        while lacking_thumbnails(database_url):
            await asyncio.sleep(0.05)
        cpu_large = _cpu_per_upload(cpu_before, snapshot(), set(pids), len(big))
        r["large_rate"] = len(big) / seconds
        r["lag_p99"] = max(p99 for _p50, p99, _max in lags.values())
    # The same two measurements with one image worker per backend (IMAGE_WORKERS=1: as many
    # worker processes on the machine as it has cores, instead of twice as many).
    one = {"IMAGE_WORKERS": "1"}
    with postgres() as database_url, bench_stack(2, database_url, "INFO", one) as stack:
        pids = stack.backend_pids()
        url = f"{stack.url}/upload/"
        cookies, xsrf, r["one_seq_p50"] = await sequential_p50(
            stack.url, database_url, small_body, ctype
        )
        _, one_lags = await lag_while(
            stack.log,
            pids,
            hammer(url, upload_headers(large_type, cookies, xsrf), large_body, seconds),
        )
        r["one_lag_p99"] = max(p99 for _p50, p99, _max in one_lags.values())
    with tempfile.TemporaryDirectory() as static, reference_site(2, Path(static)) as ref:
        seq = await sequential(f"{ref}/upload/", upload_headers(ctype), [small_body], 60)
        r["ref_seq_p50"] = summary(seq[10:])["p50"]
        ref_ok = await hammer(f"{ref}/upload/", upload_headers(ctype), small_body, seconds)
        r["ref_rate"] = len(ref_ok) / seconds

    def lag_text(found: dict[str, tuple[float, float, float]]) -> str:
        return "; ".join(
            f"{w}: {p50:.1f} / {p99:.1f} / {mx:.0f}" for w, (p50, p99, mx) in sorted(found.items())
        )

    cpu_rows = [f"| {g} | {cpu_small[0][g]:.1f} | {cpu_large[0][g]:.1f} |" for g in GROUPS]
    ours_small, ours_large = sum(cpu_small[0].values()), sum(cpu_large[0].values())
    return "\n".join(
        [
            "## Uploads of photographs, all the work counted (`make bench`, 6)",
            "",
            f"scikit-image's {PHOTO} (bench/photos.py, from its wheel) scaled to 1024×768 JPEG "
            f"q85 ({size_text(len(small))}) and to 4000×3000 JPEG q99 4:4:4 "
            f"({size_text(len(large))}, {len(large):,} bytes). 2 backends behind nginx; "
            "references: a constant Tornado handler behind the same nginx, same run.",
            "",
            "| measurement | ImageHosting | reference | ratio |",
            "|---|---:|---:|---:|",
            f"| sequential upload p50, 1 client (ms) | {r['seq_p50']:.1f} | {r['ref_seq_p50']:.1f} "
            f"| {r['seq_p50'] / r['ref_seq_p50']:.1f}× |",
            f"| uploads/s, {CLIENTS} clients, {seconds:g} s + drain of the thumbnails "
            f"({r['drain_s']:.1f} s) | {r['rate']:.1f} | {r['ref_rate']:.1f} "
            f"| {fmt_ratio(r['rate'], r['ref_rate'])} |",
            f"| answers/s in the same run, before the drain (p50 / p99 {r['p50']:.0f} / "
            f"{r['p99']:.0f} ms) | {r['rate_answers']:.1f} | | |",
            f"| uploads/s of the 4000×3000 photo, {CLIENTS} clients | {r['large_rate']:.1f} | | |",
            "| loop lag p50 / p99 / max (ms) per backend, idle | " + lag_text(idle) + " | | |",
            f"| loop lag p50 / p99 / max (ms) per backend, {CLIENTS} clients uploading the "
            f"4000×3000 photo | " + lag_text(lags) + " | | |",
            f"| each backend's event-loop thread in that run ({big_wall:.1f} s): seconds on a "
            "core / seconds runnable but waiting for a core (schedstat) | "
            + "; ".join(f"{on:.2f} / {wait:.2f}" for on, wait in waits.values())
            + " | | |",
            "| with `IMAGE_WORKERS=1` (one image worker per backend): sequential upload p50 "
            f"(ms) | {r['one_seq_p50']:.1f} | {r['ref_seq_p50']:.1f} "
            f"| {r['one_seq_p50'] / r['ref_seq_p50']:.1f}× |",
            "| with `IMAGE_WORKERS=1`: loop lag p50 / p99 / max (ms) per backend, "
            f"{CLIENTS} clients uploading the 4000×3000 photo | " + lag_text(one_lags) + " | | |",
            "",
            "Where the CPU time went, per upload (ms of CPU, all cores), in the two 8-client "
            "runs above, each until its thumbnails were drained:",
            "",
            "| processes | 1024×768 | 4000×3000 |",
            "|---|---:|---:|",
            *cpu_rows,
            f"| **all of this benchmark's processes** | **{ours_small:.1f}** "
            f"| **{ours_large:.1f}** |",
            f"| the whole machine meanwhile (busy {cpu_small[2]:.0%} / {cpu_large[2]:.0%} of "
            f"its {os.cpu_count()} cores) | {cpu_small[1]:.1f} | {cpu_large[1]:.1f} |",
            "",
            f"- Target ≥ 100 uploads/s with the drain: {'met' if r['rate'] >= 100 else 'NOT met'}"
            f" ({r['rate']:.1f}/s).",
            f"- Target sequential p50 ≤ 25 ms: {'met' if r['seq_p50'] <= 25 else 'NOT met'}"
            f" ({r['seq_p50']:.1f} ms).",
            f"- Target loop lag p99 ≤ 20 ms at ~5 MB: "
            f"{'met' if r['lag_p99'] <= 20 else 'NOT met'} (worst backend {r['lag_p99']:.1f} ms);"
            f" with IMAGE_WORKERS=1 {'met' if r['one_lag_p99'] <= 20 else 'NOT met'}"
            f" ({r['one_lag_p99']:.1f} ms, and a sequential p50 of {r['one_seq_p50']:.1f} ms).",
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
