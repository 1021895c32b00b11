"""A throwaway PostgreSQL cluster kept in one directory, for tests and the native stack.

    cluster = PostgresCluster(Path("/var/tmp/pg"))   # or PostgresCluster() for a temp dir
    cluster.init(); cluster.start()
    cluster.create_database("images_db")
    url = cluster.url("images_db")                    # postgresql://postgres@127.0.0.1:PORT/...
    cluster.restart(); cluster.stop()

initdb and postgres refuse to run as root, so when we are root they run as the `postgres`
account: the cluster directory is handed to it, and every folder above it must let that
account through (checked up front, with a message saying which folder blocks it).
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

# psycopg is imported where it is used: `scripts/local-stack --help` and its busy-port check
# run on a fresh clone, before .venv (and so psycopg) exists.
SUPERUSER = "postgres"
RUN_AS_WHEN_ROOT = "postgres"
# A unix socket path must fit in sockaddr_un.sun_path (108 bytes with the terminator).
_MAX_SOCKET_PATH = 107
_PR_SET_PDEATHSIG = 1


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped; the message says why."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def die_with_parent(sig: int) -> None:
    """Ask Linux to send `sig` to this process when its parent dies (a preexec_fn helper).

    Keeps children from outliving a launcher that was killed with SIGKILL.
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):  # not Linux: children may outlive a killed parent
        pass


def find_bin_dir() -> Path:
    """Folder holding initdb/postgres: $PG_BIN_DIR, then PATH, then the newest Debian build."""
    configured = os.environ.get("PG_BIN_DIR")
    if configured:
        return Path(configured)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not candidates:
        raise ClusterError(
            "PostgreSQL server binaries not found (no initdb); on Debian/Ubuntu install the "
            "`postgresql` package, or set PG_BIN_DIR"
        )

    def major(bin_dir: Path) -> tuple[int, ...]:
        version = bin_dir.parent.name
        return tuple(int(part) for part in version.split(".") if part.isdigit())

    return max(candidates, key=major)


def blocking_ancestor(path: Path, account: pwd.struct_passwd) -> Path | None:
    """The first folder above `path` that `account` may not pass through, if any."""
    groups = {account.pw_gid} | set(os.getgrouplist(account.pw_name, account.pw_gid))
    for folder in reversed(path.parents):
        info = folder.stat()
        if info.st_uid == account.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return folder
    return None


class PostgresCluster:
    """One PostgreSQL cluster in `directory`: data in `pgdata/`, socket and log beside it.

    `directory=None` makes a temporary directory, removed again by `remove()` or on leaving
    a `with` block. `port=0` picks a free port at the first start and keeps it afterwards.
    `durable=False` turns off fsync and friends: fast, and fine for data you can lose.
    """

    def __init__(
        self,
        directory: Path | str | None = None,
        *,
        port: int = 0,
        durable: bool = False,
        bin_dir: Path | None = None,
    ) -> None:
        self.temporary = directory is None
        if directory is None:
            directory = tempfile.mkdtemp(prefix="pgcluster-")
        self.directory = Path(directory).absolute()
        self.port = port
        self.durable = durable
        self.bin_dir = bin_dir or find_bin_dir()
        self.process: subprocess.Popen[bytes] | None = None
        self._account = pwd.getpwnam(RUN_AS_WHEN_ROOT) if os.geteuid() == 0 else None

    # -- where things are ------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.directory / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.directory

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    def url(self, dbname: str = "postgres") -> str:
        """Connection URL (TCP on 127.0.0.1, trust authentication) for database `dbname`."""
        if not self.port:
            raise ClusterError("the cluster has no port yet; start() it first")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- lifecycle -----------------------------------------------------------------------

    def init(self) -> None:
        """Create the directory and the cluster; does nothing if the cluster already exists."""
        self._prepare_directory()
        if (self.data_dir / "PG_VERSION").exists():
            return
        command = [
            str(self.bin_dir / "initdb"),
            f"--pgdata={self.data_dir}",
            f"--username={SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if not self.durable:
            command.append("--no-sync")
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, **self._as_owner()
        )
        if result.returncode != 0:
            raise ClusterError(f"initdb failed in {self.data_dir}:\n{result.stdout}{result.stderr}")

    def start(self, timeout: float = 30.0) -> None:
        """Start postgres as a child process and wait until it accepts connections."""
        if self.running:
            return
        if not (self.data_dir / "PG_VERSION").exists():
            self.init()
        pick_port = not self.port
        for _attempt in range(3 if pick_port else 1):
            if pick_port:
                self.port = free_port()
            try:
                self._launch(timeout)
                return
            except ClusterError:
                # Another program may have taken the port between the pick and the bind.
                if not pick_port or "could not bind" not in self._log_tail():
                    raise
        raise ClusterError(f"postgres could not find a free port:\n{self._log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): open sessions are ended, data is kept."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            process.send_signal(sig)
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def restart(self, timeout: float = 30.0) -> None:
        """Stop and start again on the same port (clients see their connections drop)."""
        self.stop(timeout)
        self.start(timeout)

    def remove(self) -> None:
        """Stop and delete the whole directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        self.init()
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.temporary:
            self.remove()
        else:
            self.stop()

    # -- databases -----------------------------------------------------------------------

    def create_database(self, name: str) -> bool:
        """Create database `name` unless it exists; True when it was created."""
        import psycopg
        from psycopg import errors, sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone():
                return False
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except errors.DuplicateDatabase:  # created meanwhile by someone else
                return False
            return True

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists, ending its sessions first."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # -- internals -----------------------------------------------------------------------

    def _prepare_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        socket_path = self.socket_dir / ".s.PGSQL.65535"
        if len(str(socket_path)) > _MAX_SOCKET_PATH:
            raise ClusterError(
                f"{self.directory} is too long a path for PostgreSQL's unix socket; "
                "choose a shorter one"
            )
        if self._account is None:
            self.directory.chmod(0o700)
            return
        blocked = blocking_ancestor(self.directory, self._account)
        if blocked is not None:
            raise ClusterError(
                f"PostgreSQL runs as the '{self._account.pw_name}' account here (initdb and "
                f"postgres refuse root), but that account cannot enter {blocked} "
                f"(mode {stat.filemode(blocked.stat().st_mode)}). Put the data directory "
                f"somewhere it can reach (e.g. under /var/tmp), or pass --database-url."
            )
        os.chown(self.directory, self._account.pw_uid, self._account.pw_gid)
        self.directory.chmod(0o700)

    def _as_owner(self) -> dict[str, Any]:
        """Popen arguments that run a command as the cluster's owner."""
        options: dict[str, Any] = {"cwd": self.directory}
        if self._account is not None:
            options.update(user=self._account.pw_uid, group=self._account.pw_gid, extra_groups=[])
        return options

    def _launch(self, timeout: float) -> None:
        import psycopg

        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "logging_collector": "off",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        command = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C goes to our owner, not here
                preexec_fn=lambda: die_with_parent(signal.SIGQUIT),
                **self._as_owner(),
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                self.process = None
                raise ClusterError(f"postgres exited at start:\n{self._log_tail()}")
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise ClusterError(
                        f"postgres did not accept connections in {timeout:.0f}s:\n"
                        f"{self._log_tail()}"
                    ) from None
                time.sleep(0.1)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
