"""The threads that do Pillow work for uploads, kept from starving the event loop.

`asyncio.to_thread` would run decoding and thumbnailing on the default executor: up to
cores + 4 threads, all as urgent as the event loop's own thread. While 8 clients upload 5 MB
photos, those threads keep every core busy and hold the GIL between Pillow's C calls, and the
loop waits for both (measured: event-loop lag p99 above 100 ms). Here there are only as many
threads as cores, and they run at a lower CPU priority (nice 10, Linux applies it per
thread), so the kernel runs the loop's thread first whenever it has something to do.
Uploads still use every core; they just yield to the requests in between.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

NICENESS = 10

P = ParamSpec("P")
T = TypeVar("T")


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: plain threads then
        pass


class ImageWorkers:
    def __init__(self, threads: int | None = None) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=threads or os.cpu_count() or 2,
            thread_name_prefix="pillow",
            initializer=_lower_priority,
        )

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
