"""Shared pieces of the benchmark scripts: run a local stack, describe the machine,
summarise latencies, and write a section of docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "docs" / "BENCHMARKS.md"


@dataclass
class RunningStack:
    url: str
    data_dir: Path
    process: subprocess.Popen[str]

    def backend_pids(self) -> list[int]:
        """The `python -m server` children of the local-stack process."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.process.pid and b"server" in cmdline and b"-m" in cmdline:
                pids.append(int(entry.name))
        return sorted(pids)

    def access_log_lines(self) -> int:
        log = self.data_dir / "nginx" / "logs" / "access.log"
        with log.open("rb") as fh:
            return sum(1 for _ in fh)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@contextmanager
def local_stack(workers: int = 2) -> Iterator[RunningStack]:
    """scripts/local-stack on a free port; its own cluster unless BENCH_DATABASE_URL is set."""
    data_dir = Path(tempfile.mkdtemp(prefix="ih-bench-", dir="/tmp"))
    command = [str(REPO / "scripts" / "local-stack"), "--port=0", f"--workers={workers}"]
    command.append(f"--data-dir={data_dir}")
    if os.environ.get("BENCH_DATABASE_URL"):
        command.append(f"--database-url={os.environ['BENCH_DATABASE_URL']}")
    env = os.environ | {"LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    errors: list[str] = []
    assert process.stderr is not None and process.stdout is not None
    threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True).start()  # type: ignore[arg-type]
    line = process.stdout.readline()
    if not line.startswith("ready "):
        process.wait(10)
        sys.exit("local-stack did not start:\n" + "".join(errors[-40:]))
    try:
        yield RunningStack(line.split()[1], data_dir, process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)


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
