"""Where CPU-heavy upload work runs, kept from starving the event loop: Pillow in a pool of
processes.

Pillow in threads shares the GIL with the event loop: while 8 clients upload 5 MB photos,
decoding and thumbnailing held it between C calls and the loop waited (measured: lag p99
above 30 ms). Here Pillow runs in other processes, one per core, at a lower CPU priority
(nice 10), so the kernel runs the loop first whenever it has something to do. The processes
are started once (`start`, at serve()) by *spawn*, not fork: forking a process that already
runs an event loop, a database pool and threads could copy a lock some thread holds.

A worker that dies (the kernel's OOM killer, a crash in a C library) breaks the whole
`ProcessPoolExecutor`: every job in it fails with BrokenProcessPool. The pool is then
replaced and each of those jobs tried once more on the new one; a job that breaks the new
pool too (the one that kills its worker) fails with ServiceUnavailable. The work sent here
is pure (bytes in, results out), so running it twice changes nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

from loguru import logger

from server.errors import ServiceUnavailable

NICENESS = 10
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

P = ParamSpec("P")
T = TypeVar("T")


def _start_worker(parent: int) -> None:
    """In each worker process, first: lower its priority, and make it die with the backend.
    A worker waits on a pipe whose writing end it holds itself, so it would never notice a
    backend killed with SIGKILL and stay behind; Linux's PR_SET_PDEATHSIG kills it when its
    parent does (the pool starts workers from the event loop's thread, which lives as long
    as the backend)."""
    try:
        os.nice(NICENESS)
    except OSError:
        pass
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the worker outlives a killed backend
        pass
    if os.getppid() != parent:  # the backend died before prctl took effect
        os._exit(1)


def _ready() -> int:
    """Run once per worker at start: the import of Pillow happens now, not on an upload."""
    import PIL.Image  # noqa: F401

    return os.getpid()


class ImageWorkers:
    def __init__(self, processes: int | None = None) -> None:
        self.size = processes or os.cpu_count() or 2
        # Background jobs (thumbnails) may take all workers but one: the pool's queue is
        # first-come first-served, and an upload's check, which its client waits for, must
        # not queue behind a backlog of thumbnails (measured: sequential uploads went from
        # ~20 ms to ~110 ms once thumbnails piled up).
        self._background = asyncio.Semaphore(max(1, self.size - 1))
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )

    async def start(self) -> list[int]:
        """Start the worker processes now (the pool would start them on first use); returns
        the ids of the workers that answered (one may answer several times)."""
        loop = asyncio.get_running_loop()
        return list(
            await asyncio.gather(
                *(loop.run_in_executor(self._pool, _ready) for _ in range(self.size))
            )
        )

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in a worker process; fn and its arguments must pickle."""
        call = functools.partial(fn, *args, **kwargs)
        for attempt in (1, 2):
            pool = self._pool
            try:
                return await asyncio.get_running_loop().run_in_executor(pool, call)
            except BrokenProcessPool as exc:
                self._replace(pool)
                if attempt == 2:
                    raise ServiceUnavailable() from exc
        raise AssertionError("unreachable")

    def background_slot(self) -> asyncio.Semaphore:
        """Hold it (`async with`) around `run` for work nobody waits for: it leaves a worker
        free for the work someone does wait for."""
        return self._background

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """A new pool in place of `broken`, once, however many jobs saw it break."""
        if self._pool is not broken:
            return
        logger.warning("an image worker process died; starting a new pool")
        broken.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
