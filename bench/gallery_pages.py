"""`make bench` (1): gallery page requests per second with 100,000 images, through nginx, with
1 and 2 backend processes, against the framework ceiling (a constant Tornado handler behind
the same nginx) measured in the same run."""

from __future__ import annotations

import argparse
import asyncio
import functools
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.common import WrkResult, bench_stack, fmt_ratio, postgres, publish, wrk
from bench.reference import reference_site, wait_for
from bench.seed import seed
from scripts.launch import RunningStack
from scripts.pgcluster import free_port
from server import repository
from server.config import Config
from server.db import make_pool, open_pool
from server.models import PER_PAGE

PAGES = {"HTML": {"Accept": "text/html"}, "JSON": {"Accept": "application/json"}}
# Issue 12: page 1 with 1 backend through nginx, as a share of the constant handler's rate.
TARGETS = {"JSON": 0.5, "HTML": 0.4}


ROUNDS = 3


def interleaved(runs: dict[str, Callable[[], WrkResult]]) -> dict[str, WrkResult]:
    """Each run ROUNDS times, in turns (a, b, c, a, b, c, ...), and for each its median run
    by rate: a burst of load from elsewhere on the machine hits one round of every kind
    instead of all of one kind, and the median leaves that round out."""
    got: dict[str, list[WrkResult]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, one_run in runs.items():
            got[name].append(one_run())
    return {
        name: sorted(results, key=lambda r: r.requests_per_second)[ROUNDS // 2]
        for name, results in got.items()
    }


def target_line(kind: str, share: float, result: WrkResult, reference: WrkResult) -> str:
    got = result.requests_per_second / reference.requests_per_second
    met = got >= share and result.bad == 0
    return (
        f"- Target: page 1 {kind} at least {share:.0%} of the ceiling with 1 backend: "
        f"{'met' if met else 'NOT met'} ({got:.0%})."
    )


def visitor_cookie(url: str) -> str:
    """The cookies of a returning visitor (owner token, XSRF), as a browser would send them."""
    with httpx.Client(base_url=url) as client:
        client.get("/images/").raise_for_status()
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def page_runs(url: str, seconds: float, cookie: str) -> dict[str, Callable[[], WrkResult]]:
    return {
        kind: functools.partial(
            wrk, f"{url}/images/", seconds=seconds, headers={**headers, "Cookie": cookie}
        )
        for kind, headers in PAGES.items()
    }


async def page_query_microseconds(database_url: str, runs: int = 2000) -> float:
    """Mean wall time of `repository.list_page` for page 1 from one process, pool included."""
    pool = make_pool(Config.from_env({}, database_url=database_url, db_pool_max=2))
    await open_pool(pool)
    try:
        for _ in range(100):
            await repository.list_page(pool, PER_PAGE, 0)
        started = time.perf_counter()
        for _ in range(runs):
            await repository.list_page(pool, PER_PAGE, 0)
        return (time.perf_counter() - started) / runs * 1e6
    finally:
        await pool.close()


def backend_url(stack: RunningStack) -> str:
    """worker-1's own address, to measure it without nginx."""
    port = re.search(r"worker-1 ready on 127\.0\.0\.1:(\d+)", "".join(stack.log))
    assert port is not None
    return f"http://127.0.0.1:{port.group(1)}"


@contextmanager
def constant_backend() -> Iterator[str]:
    port = free_port()
    child = subprocess.Popen([sys.executable, "-m", "bench.reference", str(port)])
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(url + "/")
        yield url
    finally:
        child.terminate()
        child.wait(10)


def run(rows: int, seconds: float) -> str:
    results: dict[tuple[int, str], WrkResult] = {}
    references: dict[int, WrkResult] = {}
    direct: dict[str, WrkResult] = {}
    with postgres() as database_url:
        seed(database_url, rows)
        query_us = asyncio.run(page_query_microseconds(database_url))
        for workers in (1, 2):
            # Both sites run at once (idle while the other is measured), in turns.
            with (
                bench_stack(workers, database_url) as stack,
                tempfile.TemporaryDirectory() as static,
                reference_site(workers, Path(static)) as reference,
            ):
                cookie = visitor_cookie(stack.url)
                got = interleaved(
                    {
                        "reference": functools.partial(
                            wrk, f"{reference}/images/", seconds=seconds / ROUNDS
                        ),
                        **page_runs(stack.url, seconds / ROUNDS, cookie),
                    }
                )
                references[workers] = got.pop("reference")
                for kind, result in got.items():
                    results[workers, kind] = result
                if workers == 1:  # the same backend without nginx in front
                    with constant_backend() as url:
                        direct = interleaved(
                            {
                                "constant": functools.partial(
                                    wrk, f"{url}/images/", seconds=seconds / ROUNDS
                                ),
                                **page_runs(backend_url(stack), seconds / ROUNDS, cookie),
                            }
                        )
    rows_md = [
        "| backends | page | req/s | p50 ms | p99 ms | errors | share of the ceiling |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for workers in (1, 2):
        ref = references[workers]
        rows_md.append(
            f"| {workers} | constant handler (reference) | {ref.requests_per_second:,.0f} "
            f"| {ref.p50_ms:.2f} | {ref.p99_ms:.2f} | {ref.bad} | 100% |"
        )
        for kind in PAGES:
            r = results[workers, kind]
            rows_md.append(
                f"| {workers} | gallery page 1, {kind} | {r.requests_per_second:,.0f} "
                f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.bad} "
                f"| {fmt_ratio(r.requests_per_second, ref.requests_per_second)} |"
            )
    return "\n".join(
        [
            "## Gallery pages (`make bench`, 1)",
            "",
            f"`GET /images/` with {rows:,} images in the database, through nginx, as a returning "
            f"visitor (owner and XSRF cookies); wrk, 1 thread, 32 connections, {ROUNDS} runs of "
            f"{round(seconds / ROUNDS)} s, each after a 1 s warm-up, taken in turns with the "
            "reference's (reference, HTML, JSON, reference, ...); each row is its median run. "
            "The reference is a Tornado handler that writes a constant "
            "(bench/reference.py) behind the same nginx template with the same number of "
            "processes. wrk, nginx, the backends and PostgreSQL share the 2 cores.",
            "",
            *rows_md,
            "",
            *(
                target_line(kind, share, results[1, kind], references[1])
                for kind, share in TARGETS.items()
            ),
            "",
            "### Where a gallery request's time goes",
            "",
            "One backend process measured alone, without nginx (wrk straight at its port), and "
            "the page query timed in-process; per-request cost = 1 / throughput of the one "
            "process:",
            "",
            "| measured | req/s | cost per request |",
            "|---|---:|---:|",
            *(
                f"| {label} | {direct[key].requests_per_second:,.0f} "
                f"| {1e6 / direct[key].requests_per_second:,.0f} µs |"
                for key, label in (
                    ("constant", "constant Tornado handler"),
                    ("JSON", "gallery page 1, JSON"),
                    ("HTML", "gallery page 1, HTML"),
                )
            ),
            f"| `repository.list_page` alone (pool check + the one query) | | {query_us:,.0f} µs |",
            "",
            "Page 1 comes from each process's page cache (server/pagecache.py: kept until the "
            "next event or for a second, with read-your-writes by version), and so does its "
            "whole body, HTML or JSON, made once per kind of viewer (language, admin or not, "
            "which tiles they may delete; handlers/gallery.py). A request verifies nothing it "
            "has verified before (the owner cookie's signature is kept once checked), renders "
            "nothing and hashes nothing (no ETag on gallery HTML; JSON's is kept with the "
            "body): it finds its body, fills in its freshly masked XSRF token and its address, "
            "and sends it. What remains above the constant handler is Tornado's own work on a "
            "larger request and answer (cookies, headers, 16 KB of HTML instead of 48 bytes) "
            "and, through nginx, nginx carrying that body; a profile "
            "(bench/gallery_profile.py, py-spy) follows this section.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    body = run(args.rows, args.seconds)
    publish("bench-gallery", body, write=not args.no_write)


if __name__ == "__main__":
    main()
