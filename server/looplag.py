"""Watch this process's event loop: how late does a 10 ms timer fire?

Everything a backend does for its visitors waits while the loop is blocked, so a stall is a
bug (work that belongs in a thread). Stalls of 100 ms or more are logged as warnings as they
happen; SIGUSR1 logs the lag distribution since the previous report (`make bench` uses it).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from dataclasses import dataclass

from loguru import logger

SAMPLE_SECONDS = 0.010
STALL_WARNING_MS = 100.0
_KEEP_SAMPLES = 60_000  # ten minutes at 100 samples a second


@dataclass(frozen=True, slots=True)
class LagSummary:
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    def __str__(self) -> str:
        return (
            f"event loop lag: p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, "
            f"max {self.max_ms:.2f} ms over {self.samples} samples"
        )


def summarise(lags_ms: list[float]) -> LagSummary:
    if not lags_ms:
        return LagSummary(0, math.nan, math.nan, math.nan)
    ordered = sorted(lags_ms)

    def at(pct: float) -> float:
        return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]

    return LagSummary(len(ordered), at(50), at(99), ordered[-1])


class LoopLagMonitor:
    def __init__(self) -> None:
        self._lags: deque[float] = deque(maxlen=_KEEP_SAMPLES)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def report(self) -> LagSummary:
        """Log (and return) the lag since the previous report, and start counting afresh."""
        summary = summarise(list(self._lags))
        self._lags.clear()
        logger.info("{}", summary)
        return summary

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(SAMPLE_SECONDS)
            lag_ms = max(0.0, (loop.time() - started - SAMPLE_SECONDS) * 1000)
            self._lags.append(lag_ms)
            if lag_ms >= STALL_WARNING_MS:
                logger.warning("the event loop was blocked for {:.0f} ms", lag_ms)
