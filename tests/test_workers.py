"""server.workers: Pillow work runs on a few low-priority threads, off the event loop."""

from __future__ import annotations

import os
import threading

from server.workers import NICENESS, ImageWorkers


def where_am_i(tag: str) -> tuple[str, int, str]:
    native = threading.get_native_id()
    return tag, os.getpriority(os.PRIO_PROCESS, native), threading.current_thread().name


async def test_work_runs_on_niced_pillow_threads() -> None:
    workers = ImageWorkers(threads=2)
    try:
        tag, niceness, name = await workers.run(where_am_i, "x")
    finally:
        workers.shutdown()
    assert tag == "x"
    assert name.startswith("pillow")
    assert niceness == os.getpriority(os.PRIO_PROCESS, 0) + NICENESS or niceness == 19
    # The event loop's own thread keeps its priority.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < niceness
