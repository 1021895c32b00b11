"""Where one backend spends a gallery request: py-spy samples the process while wrk asks it
for page 1 (HTML, then JSON) straight at its port, with 100,000 images in the database.

    .venv/bin/pip install py-spy   # a profiler, not a dependency of the app
    .venv/bin/python -m bench.gallery_profile [--rows N] [--seconds S] [--top N]

Prints, per kind of page, the functions with the most samples on the CPU: "self" counts the
samples where the function itself ran, "total" those where it was anywhere on the stack.
The share of samples in the event loop's poll says how long the process waited for work.
Nothing is written to docs/BENCHMARKS.md: the figures quoted there were taken from this
output by hand, with the load of the machine at the time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import bench_stack, postgres, wrk
from bench.gallery_pages import PAGES, backend_url, visitor_cookie
from bench.seed import seed

# Frames of the event loop waiting for sockets: the process had nothing to do.
_IDLE = ("select (selectors.py)", "poll (selectors.py)")
_OTHER_THREAD = "Thread._bootstrap (threading.py)"


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def record(pid: int, seconds: float, keep: Path | None = None) -> Counter[tuple[str, ...]]:
    """Stacks (outermost first) and their sample counts, idle ones included; `keep`: where
    to leave py-spy's raw output (collapsed stacks, for a flame graph)."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        subprocess.run(
            [
                py_spy(),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(round(seconds)),
                "--rate",
                "250",
                "--format",
                "raw",
                "--idle",
                "--nonblocking",
                "--nolineno",
                "--output",
                out.name,
            ],
            check=True,
            capture_output=True,
        )
        raw = Path(out.name).read_text()
        if keep is not None:
            keep.write_text(raw)
        stacks: Counter[tuple[str, ...]] = Counter()
        for line in raw.splitlines():
            stack, _, count = line.rpartition(" ")
            if stack:
                stacks[tuple(stack.split(";"))] += int(count)
        return stacks


def top(stacks: Counter[tuple[str, ...]], n: int) -> str:
    """A Markdown table of the `n` functions with most self samples, of the busy ones."""
    # The event loop's thread only: the others are the pool's threads waiting for work.
    loop = Counter({s: c for s, c in stacks.items() if not s[0].startswith(_OTHER_THREAD)})
    busy = Counter({s: c for s, c in loop.items() if not any(i in s[-1] for i in _IDLE)})
    all_samples = sum(loop.values())
    busy_samples = sum(busy.values()) or 1
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for stack, count in busy.items():
        own[stack[-1]] += count
        for frame in set(stack):
            anywhere[frame] += count
    lines = [
        f"busy {busy_samples / all_samples:.0%} of {all_samples} samples "
        "(the rest: waiting in the event loop's poll)",
        "",
        "| function (file) | self | total |",
        "|---|---:|---:|",
    ]
    for frame, count in own.most_common(n):
        lines.append(
            f"| `{frame}` | {count / busy_samples:.1%} | {anywhere[frame] / busy_samples:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--raw", type=Path, help="a folder for py-spy's collapsed stacks")
    args = parser.parse_args()
    with postgres() as database_url:
        seed(database_url, args.rows)
        with bench_stack(1, database_url) as stack:
            url = backend_url(stack)
            cookie = visitor_cookie(stack.url)
            (pid,) = stack.backend_pids()
            for kind, headers in PAGES.items():
                with ThreadPoolExecutor(1) as load:
                    result = load.submit(
                        wrk,
                        f"{url}/images/",
                        seconds=args.seconds + 1,
                        headers={**headers, "Cookie": cookie},
                        warmup=1,
                    )
                    time.sleep(1.5)  # after wrk's warm-up, inside its measured run
                    keep = args.raw / f"gallery-{kind.lower()}.txt" if args.raw else None
                    stacks = record(pid, args.seconds - 1, keep)
                    print(f"\n### page 1, {kind}: {result.result()}\n")
                print(top(stacks, args.top))


if __name__ == "__main__":
    main()
