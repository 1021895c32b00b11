"""Run Compose services the way their containers would, without Docker (the emulation tier).

Everything happens in one private network and mount namespace (`unshare --net --mount`, as
root), held open by a sleeping process and entered with `nsenter`:

- network: loopback only. Each container has its own 127.0.0.x address, and a stand-in for
  Docker's DNS at 127.0.0.11 (tests/emulated_dns.py) answers the service names with them. A
  route per service makes connections to it come from its client's address (the backend's,
  for db), so PostgreSQL sees a remote client as it does in Docker, not 127.0.0.1 (which the
  image's pg_hba.conf trusts). Unlike Docker, all containers share this one namespace, so a
  port open in one is reachable at 127.0.0.1 from the others.
- files: each container gets its own root, a tmpfs holding bind mounts of this machine's
  top-level folders (its programs stand in for the image's), with its own /tmp and /run, the
  folders its image owns as fresh tmpfs (/etc/nginx, /var/lib/postgresql, …), the files the
  Dockerfile copies, the Compose volumes at their container paths, and Docker's /etc/hosts and
  /etc/resolv.conf (nameserver 127.0.0.11). Nothing is written to this machine's folders;
  all of it vanishes with the namespace.
- processes: `chroot` into that root, the container's user (setpriv), exactly the
  environment Docker gives it (image ENV + Compose's environment), its working directory.

What each image does at start is in tests/emulated_images.py.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DNS_ADDRESS = "127.0.0.11"
FIRST_ADDRESS = 2  # 127.0.0.2, .3, … in the order containers are created


class EmulationError(RuntimeError):
    pass


@dataclass
class Container:
    name: str  # container name: `db` (container_name) or `imagehosting-backend-1`
    service: str
    root: Path
    address: str
    env: dict[str, str]
    user: str
    workdir: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    stop_signal: int = signal.SIGTERM
    facts: dict[str, Any] = field(default_factory=dict)  # per-image details (healthcheck…)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def record(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "env": self.env,
            "user": self.user,
            "workdir": self.workdir,
            "running": self.running,
            "id": f"emulated-{self.name}",
            "service": self.service,
        }

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Namespace:
    """A network + mount namespace, held by a sleeping process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "sleep", "infinity"],
            start_new_session=True,
        )
        ours = os.stat("/proc/self/ns/net").st_ino
        deadline = time.monotonic() + 30
        while os.stat(f"/proc/{self.holder.pid}/ns/net").st_ino == ours:
            if self.holder.poll() is not None or time.monotonic() > deadline:
                raise EmulationError("unshare did not make a network namespace (root needed)")
            time.sleep(0.05)
        self.net_inode = os.stat(f"/proc/{self.holder.pid}/ns/net").st_ino

    def argv(self, command: list[str]) -> list[str]:
        return ["nsenter", f"--target={self.holder.pid}", "--net", "--mount", "--", *command]

    def run(
        self, command: list[str], timeout: float = 120, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("capture_output", True)
        return subprocess.run(
            self.argv(command), text=True, timeout=timeout, check=False, cwd="/", **kwargs
        )

    def must(self, command: list[str], what: str, **kwargs: Any) -> str:
        result = self.run(command, **kwargs)
        if result.returncode != 0:
            raise EmulationError(f"{what} failed ({result.returncode}): {result.stderr[-2000:]}")
        return result.stdout

    def popen(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as sink:
            return subprocess.Popen(
                self.argv(command),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,
            )

    def close(self) -> None:
        """End every process in the namespace, then the holder: the mounts go with it."""
        for _ in range(50):
            inside = []
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit() and int(entry.name) != self.holder.pid:
                    try:
                        if os.stat(entry / "ns" / "net").st_ino == self.net_inode:
                            inside.append(int(entry.name))
                    except OSError:
                        continue
            if not inside:
                break
            for pid in inside:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        self.holder.kill()
        self.holder.wait(30)


def _creatable(path: str, owned: list[str]) -> bool:
    """Whether `path` can be made inside a container root without touching this machine's
    folders: below a new top-level folder, /tmp, /run or one of the image's own folders."""
    parts = PurePosixPath(path).parts
    if len(parts) < 2:
        return False
    if parts[1] in ("tmp", "run") or not Path("/", parts[1]).exists():
        return True
    return any(PurePosixPath(path).is_relative_to(d) for d in owned)


def _unit(path: PurePosixPath, owned: list[str]) -> str | None:
    """The folder a layer file is copied with: an owned folder holding it, or its new
    top-level folder."""
    for folder in owned:
        if path.is_relative_to(folder):
            return folder
    top = "/" + path.parts[1]
    return top if not Path(top).exists() else None


def root_script(
    root: Path,
    owned: list[str],
    layer: Path | None,
    mounts: list[tuple[str, str, bool]],
    files: dict[str, Path],
) -> str:
    """Shell commands (run inside the namespace) building a container's root."""
    q = shlex.quote
    r = q(str(root))
    lines = [
        "set -eu",
        f"mkdir -p {r}",
        f"mount -t tmpfs -o mode=0755 tmpfs {r}",
        "for e in /*; do n=${e#/}; case $n in",
        f'  tmp|run) mkdir {r}/"$n"; mount -t tmpfs tmpfs {r}/"$n" ;;',
        f'  *) if [ -L "$e" ]; then cp -P "$e" {r}/"$n";',
        f'     elif [ -d "$e" ]; then mkdir {r}/"$n"; mount --rbind "$e" {r}/"$n"; fi ;;',
        "esac; done",
        f"chmod 1777 {r}/tmp",
    ]
    for folder in owned:
        target = q(f"{root}{folder}")
        if _creatable(folder, owned[: owned.index(folder)]):
            lines.append(f"mkdir -p {target}")
        elif Path(folder).is_dir():  # this machine's: hidden under the image's own, empty
            lines.append(f"mount -t tmpfs -o mode=0755 tmpfs {target}")
        else:
            raise EmulationError(f"cannot make {folder} without touching this machine")
    if layer is not None:
        # Copied folder by folder into the image's own folders (or new top-level ones), never
        # over a bind of this machine's: `cp -a` would set that folder's mode and times.
        units: set[str] = set()
        for path in layer.rglob("*"):
            if path.is_file():
                image_path = PurePosixPath("/", path.relative_to(layer))
                unit = _unit(image_path, owned)
                if unit is None:
                    raise EmulationError(f"the image file {image_path} has no place here")
                units.add(unit)
        for unit in sorted(units):
            lines.append(f"mkdir -p {q(f'{root}{unit}')}")
            lines.append(f"cp -a {q(f'{layer}{unit}')}/. {q(f'{root}{unit}')}/")
    for source, target, read_only in mounts:
        if not _creatable(target, owned):
            raise EmulationError(f"cannot make the mount point {target} here")
        lines.append(f"mkdir -p {q(f'{root}{target}')}")
        lines.append(f"mount --bind {q(source)} {q(f'{root}{target}')}")
        if read_only:
            lines.append(f"mount -o remount,bind,ro {q(f'{root}{target}')}")
    for target, source in files.items():
        lines.append(f"mount --bind {q(str(source))} {q(f'{root}{target}')}")
    return "\n".join(lines) + "\n"


def wait_until(check: Any, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def write_json(path: Path, value: Any) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(value, indent=1))
    temp.replace(path)


def duration(value: str | None, default: float) -> float:
    """Compose's durations as `docker compose config` prints them: "10s", "1m30s"."""
    if not value:
        return default
    total, number = 0.0, ""
    for char in value:
        if char.isdigit() or char == ".":
            number += char
        else:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[char]
            number = ""
    return total


# Where a container sees the suite's virtualenv (bound read-only by the python entrypoint).
VENV = "/.emulation/venv"


def python_wrapper() -> str:
    """/.emulation/bin/python: the suite's virtualenv Python stands in for the image's, which
    pip-installed requirements.txt (only the Docker workflow runs that install)."""
    return f'#!/bin/sh\nexec {VENV}/bin/python "$@"\n'
