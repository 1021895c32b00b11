"""Where a benchmark's CPU time goes: each process this benchmark started (and its
descendants) read from /proc before and after a run, grouped by what it is, against what the
whole machine did meanwhile (other programs included)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Snapshot:
    processes: dict[int, tuple[int, str, float]]  # pid -> (parent, name, CPU seconds so far)
    machine_busy: float  # CPU seconds of the whole machine, every core, not idle
    machine_total: float


def _stat(pid: str) -> tuple[int, str, float] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is the state; utime and stime are the 14th and 15th fields of the line.
    return int(fields[1]), name, (int(fields[11]) + int(fields[12])) / _TICKS


def snapshot() -> Snapshot:
    """Every process below (and including) this one, and the machine's counters."""
    everything = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(p))}
    mine = {os.getpid()}
    grew = True
    while grew:
        found = {pid for pid, (parent, _n, _c) in everything.items() if parent in mine}
        grew = not found <= mine
        mine |= found
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(v) for v in cpu]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return Snapshot(
        {pid: everything[pid] for pid in mine if pid in everything},
        (sum(ticks[:8]) - idle) / _TICKS,
        sum(ticks[:8]) / _TICKS,
    )


def cpu_by_group(
    before: Snapshot, after: Snapshot, group: Callable[[int, int, str], str]
) -> tuple[dict[str, float], float, float]:
    """CPU seconds spent between the snapshots per group (`group(pid, parent, name)`),
    the machine's busy CPU seconds over the same time, and its capacity (cores × seconds)."""
    spent: dict[str, float] = {}
    for pid, (parent, name, cpu) in after.processes.items():
        earlier = before.processes.get(pid)
        used = cpu - (earlier[2] if earlier and earlier[1] == name else 0.0)
        key = group(pid, parent, name)
        spent[key] = spent.get(key, 0.0) + used
    return (
        spent,
        after.machine_busy - before.machine_busy,
        after.machine_total - before.machine_total,
    )


def loop_thread_times(pid: int) -> tuple[float, float]:
    """(seconds on a core, seconds runnable but waiting for one) of `pid`'s main thread (its
    event loop) so far, from the scheduler's own counters (/proc/<pid>/schedstat)."""
    on_cpu, waiting, _slices = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9
