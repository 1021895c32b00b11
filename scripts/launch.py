"""Start `scripts/local-stack` as a child and wait for its `ready` line: used by the test
suite, the benchmarks and the screenshot script."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is `parent`, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def command_line(pid: int) -> bytes:
    """A process's arguments, NUL-separated (empty once it has gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@dataclass
class RunningStack:
    url: str
    data_dir: Path
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    def backend_pids(self) -> list[int]:
        """The `python -m server` children of the local-stack process."""
        return sorted(
            pid
            for pid in child_pids(self.process.pid)
            if {b"server", b"-m"} <= set(command_line(pid).split(b"\0"))
        )

    def access_log_lines(self) -> int:
        with (self.data_dir / "nginx" / "logs" / "access.log").open("rb") as fh:
            return sum(1 for _ in fh)


class StackDidNotStart(RuntimeError):
    pass


@contextmanager
def running_stack(
    *,
    workers: int = 2,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[RunningStack]:
    """A local stack on a free port in a fresh data dir under /tmp (removed afterwards).

    Without `database_url` the stack starts its own PostgreSQL cluster in the data dir;
    `extra_args` go to local-stack as they are (e.g. `--seaweedfs`).
    """
    # Not pytest's tmp_path: PostgreSQL (run as `postgres` when we are root) must be able
    # to pass through every parent folder, and its socket path must stay short.
    data_dir = Path(tempfile.mkdtemp(prefix="ih-stack-", dir="/tmp"))
    command = [str(REPO / "scripts" / "local-stack"), "--port=0", f"--workers={workers}"]
    command.append(f"--data-dir={data_dir}")
    if database_url:
        command.append(f"--database-url={database_url}")
    command += extra_args
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=os.environ | dict(env or {}),
    )
    assert process.stdout is not None and process.stderr is not None
    stack = RunningStack("", data_dir, process)
    reader = threading.Thread(target=stack.log.extend, args=(process.stderr,), daemon=True)
    reader.start()
    try:
        line = process.stdout.readline()
        if not line.startswith("ready "):
            process.wait(30)
            reader.join(5)
            raise StackDidNotStart("local-stack did not start:\n" + "".join(stack.log[-60:]))
        stack.url = line.split()[1]
        yield stack
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(5)
        process.stdout.close()
        process.stderr.close()
        shutil.rmtree(data_dir, ignore_errors=True)
