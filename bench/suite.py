"""`make bench`: every benchmark in turn, each writing its section of docs/BENCHMARKS.md.

1. gallery pages (bench/gallery_pages.py)   2. direct links (bench/direct_link.py)
3. uploads and event-loop lag (bench/uploads.py)   4. deep pages (bench/deep_pages.py)
5. WebSocket fan-out (bench/ws_fanout.py)   6. uploads of photographs (bench/photo_uploads.py)
7. images in object storage (bench/storage.py)   8. thumbnail settings (bench/thumbnail_settings.py)
Each starts its own PostgreSQL cluster and stack, so one failing does not spoil the others'
numbers; about ten minutes on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from collections.abc import Callable

from bench import (
    deep_pages,
    direct_link,
    gallery_pages,
    photo_uploads,
    storage,
    thumbnail_settings,
    uploads,
    ws_fanout,
)
from bench.common import write_section

BENCHMARKS: list[tuple[str, Callable[[], str]]] = [
    ("bench-gallery", lambda: gallery_pages.run(rows=100_000, seconds=8)),
    ("bench-direct", lambda: direct_link.run(seconds=6)),
    ("bench-uploads", lambda: asyncio.run(uploads.run(seconds=10))),
    ("bench-deep", lambda: deep_pages.run(rows=1_000_000, repeats=30, requests=100)),
    ("bench-ws", lambda: asyncio.run(ws_fanout.run(1000, 10))),
    ("bench-photo-uploads", lambda: asyncio.run(photo_uploads.run(seconds=8))),
    ("bench-storage", lambda: storage.run(seconds=8)),
    ("bench-thumbnail-settings", lambda: thumbnail_settings.run(runs=5)),
]


def main() -> int:
    failed = []
    for name, benchmark in BENCHMARKS:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            body = benchmark()
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        write_section(name, body)
        print(body, f"\n({time.monotonic() - started:.0f} s)\n", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
