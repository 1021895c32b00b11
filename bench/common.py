"""Shared pieces of the benchmark scripts: run a local stack, describe the machine,
summarise latencies, and write a section of docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scripts.launch import RunningStack, running_stack

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "docs" / "BENCHMARKS.md"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@contextmanager
def local_stack(workers: int = 2) -> Iterator[RunningStack]:
    """A stack for a benchmark: its own cluster unless BENCH_DATABASE_URL is set."""
    with running_stack(
        workers=workers,
        database_url=os.environ.get("BENCH_DATABASE_URL"),
        # Thousands of sockets come from one address here: lift nginx's per-address cap.
        env={"LOG_LEVEL": "WARNING", "NGINX_WS_PER_IP": "65000"},
    ) as stack:
        yield stack


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def machine_description() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_kib / 1048576:.0f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between `<!-- name:start -->` and `<!-- name:end -->`."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"<!-- {name}:start -->\n_Measured {stamp} on {machine_description()}._\n\n"
        f"{body.strip()}\n<!-- {name}:end -->"
    )
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else f"{text}\n{block}\n"
    BENCHMARKS_MD.parent.mkdir(exist_ok=True)
    BENCHMARKS_MD.write_text(text)


# --- shared by the `make bench` suite -------------------------------------------------------

# Benchmarks hammer the stack from one address: lift nginx's per-address write limits.
UNLIMITED = {
    "NGINX_UPLOAD_RATE": "1000000r/s",
    "NGINX_UPLOAD_BURST": "1000000",
    "NGINX_CONN_PER_IP": "10000",
    "NGINX_WS_PER_IP": "65000",  # nginx refuses limit_conn values of 65536 and more
}


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (fsync off) with an empty `images_db`; yields its URL."""
    from scripts.pgcluster import PostgresCluster

    with PostgresCluster() as cluster:
        cluster.create_database("images_db")
        yield cluster.url("images_db")


@contextmanager
def bench_stack(
    workers: int,
    database_url: str,
    log_level: str = "WARNING",
    env: dict[str, str] | None = None,
) -> Iterator[RunningStack]:
    with running_stack(
        workers=workers,
        database_url=database_url,
        env={"LOG_LEVEL": log_level, **UNLIMITED, **(env or {})},
    ) as stack:
        yield stack


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int  # non-2xx/3xx answers and socket errors


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS_MS[unit]


def wrk(
    url: str,
    *,
    seconds: float = 8,
    connections: int = 32,
    threads: int = 1,
    headers: dict[str, str] | None = None,
    warmup: float = 1,
) -> WrkResult:
    """HTTP load with wrk (loopback only): requests/s and latency percentiles."""
    args = ["wrk", f"-t{threads}", f"-c{connections}", "--latency"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    if warmup:
        subprocess.run([*args, f"-d{round(warmup)}s", url], capture_output=True, check=True)
    out = subprocess.run(
        [*args, f"-d{round(seconds)}s", url], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        bad += sum(int(n) for n in m.groups())
    return WrkResult(rps, p50, p99, requests, bad)


def fmt_ratio(value: float, reference: float) -> str:
    return f"{value / reference:.0%}" if reference else "n/a"


def publish(section: str, body: str, *, write: bool) -> None:
    """Print a benchmark's section, and unless told otherwise write it to BENCHMARKS.md."""
    print(body)
    if write:
        write_section(section, body)
