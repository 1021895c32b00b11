"""`scripts/local-stack`: PostgreSQL, N backend processes and nginx, run natively from one data dir.

A port another program holds is refused before anything starts. Start order is database →
`<data-dir>/stack.env` (DATABASE_URL and IMAGES_DIR, for backup.sh, restore.sh and
`python -m server check`) → backends (each answers /healthz) → nginx (answers through to a
backend); then one line `ready http://127.0.0.1:PORT` goes to stdout and everything else to
stderr. SIGINT/SIGTERM stops it all in the reverse order; a child that dies on its own stops
the rest and makes the exit status non-zero.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from scripts import nginxconf
from scripts.pgcluster import ClusterError, PostgresCluster, die_with_parent, free_port
from scripts.seaweed import SeaweedError, SeaweedFS

REPO_ROOT = Path(__file__).resolve().parent.parent
DATABASE_NAME = "images_db"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StackError(RuntimeError):
    """Something did not come up; the message says what and where to look."""


class StopRequested(Exception):
    """Raised from the signal handler so that any wait in progress unwinds to `run()`."""


def log(message: str) -> None:
    print(f"local-stack: {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    stop_signal: signal.Signals = signal.SIGTERM

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} did not stop in {timeout:.0f}s; killing it")
            self.process.kill()
            self.process.wait()


def spawn(name: str, command: Sequence[str], env: dict[str, str] | None = None) -> Child:
    """Start a child in its own session (a terminal's Ctrl-C reaches only us, and we stop
    children in order); it gets SIGTERM should we die without cleaning up."""
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr.fileno(),  # stdout is reserved for the ready line
        start_new_session=True,
        preexec_fn=lambda: die_with_parent(signal.SIGTERM),
    )
    return Child(name, process)


def wait_until(check: Callable[[], bool], child: Child | None, what: str, timeout: float) -> None:
    """Poll `check` until it passes; fail early if `child` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while not check():
        if child is not None and child.process.poll() is not None:
            raise StackError(f"{child.name} exited with status {child.process.returncode}")
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not answer within {timeout:.0f}s")
        time.sleep(0.2)


def answers_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with _NO_PROXY.open(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    return check


def ensure_database(url: str) -> None:
    """Create the database `url` names, connecting to the server's `postgres` database."""
    # Imported here: --help and the port check run before .venv holds psycopg.
    import psycopg
    from psycopg import conninfo, errors, sql

    params = conninfo.conninfo_to_dict(url)
    name = str(params.get("dbname") or DATABASE_NAME)
    admin = conninfo.make_conninfo(url, dbname="postgres")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                log(f"creating database {name}")
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except errors.DuplicateDatabase:
        pass
    except psycopg.Error as exc:
        raise StackError(f"cannot reach or prepare the database: {exc}") from exc


def ensure_port_free(port: int) -> None:
    """Refuse a port another program listens on, before anything starts: otherwise that
    program would answer the readiness check and nginx would fail only afterwards."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As nginx binds: connections of an earlier run lingering in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise StackError(
                f"port {port} on 127.0.0.1 is already in use ({exc.strerror}): stop the "
                f"program that holds it, or pick another port: scripts/local-stack --port "
                f'{port + 1} (make run ARGS="--port {port + 1}"); nothing was started'
            ) from None


STORAGE_SETTINGS = (
    "STORAGE",
    "S3_ENDPOINT_URL",
    "S3_BUCKET",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "S3_REGION",
)


def write_stack_env(
    path: Path, database_url: str, images_dir: Path, storage: Mapping[str, str]
) -> None:
    """`KEY=value` lines (python-dotenv's format) saying where this stack keeps its data,
    so backup.sh --env-file and `python -m server --env-file` reach it without reading logs
    (the throwaway cluster's port is picked afresh at each start). `storage`: the backends'
    STORAGE and S3_* settings, when they are not the local folder's."""
    values = {"DATABASE_URL": database_url, "IMAGES_DIR": str(images_dir)}
    values |= {name: storage[name] for name in STORAGE_SETTINGS if name in storage}
    if any("\n" in value for value in values.values()):
        raise StackError(f"cannot write {path}: a value holds a line break")
    lines = [
        "# Written by scripts/local-stack at each start: where this stack keeps its data.",
        "# bash backup.sh --env-file FILE; .venv/bin/python -m server --env-file FILE check",
        *(f"{name}={value}" for name, value in values.items()),
    ]
    partial = path.with_name(f".{path.name}.partial")
    # Private: a --database-url may carry a password.
    partial.touch(mode=0o600)
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(path)


def make_traversable(folder: Path) -> None:
    """Let other accounts (postgres, nginx workers) pass through `folder`, without
    taking any permission away: a shared folder such as /tmp keeps its mode."""
    folder.mkdir(parents=True, exist_ok=True)
    info = folder.stat()
    wanted = stat.S_IMODE(info.st_mode) | 0o711
    if wanted != stat.S_IMODE(info.st_mode) and info.st_uid == os.geteuid():
        folder.chmod(wanted)


def invoking_account() -> str:
    """`user group` for nginx workers: whoever runs the stack, so they read its files."""
    user = pwd.getpwuid(os.geteuid())
    return f"{user.pw_name} {grp.getgrgid(os.getegid()).gr_name}"


class LocalStack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.data_dir: Path = args.data_dir.absolute()
        self.port: int = args.port or free_port()
        self.workers: int = args.workers
        self.database_url: str | None = args.database_url
        self.cluster: PostgresCluster | None = None
        self.seaweedfs: SeaweedFS | None = (
            SeaweedFS(self.data_dir / "seaweedfs") if args.seaweedfs else None
        )
        self.children: list[Child] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env_file(self) -> Path:
        return self.data_dir / "stack.env"

    def start(self) -> None:
        make_traversable(self.data_dir)
        images_dir = self.data_dir / "images"
        images_dir.mkdir(exist_ok=True)
        database_url = self.database_url or self._start_cluster()
        ensure_database(database_url)
        storage_env = self._storage_env()
        write_stack_env(self.env_file, database_url, images_dir, os.environ | storage_env)
        log(f"DATABASE_URL and IMAGES_DIR written to {self.env_file}")

        backends = [("127.0.0.1", free_port()) for _ in range(self.workers)]
        for index, (host, port) in enumerate(backends, start=1):
            env = (
                os.environ
                | storage_env
                | {
                    "DATABASE_URL": database_url,
                    "IMAGES_DIR": str(images_dir),
                    "WORKER_NAME": f"worker-{index}",
                    "HOST": host,
                    "PORT": str(port),
                    "PYTHONUNBUFFERED": "1",
                }
            )
            command = [sys.executable, "-m", "server", "--host", host, "--port", str(port)]
            self.children.append(spawn(f"worker-{index}", command, env))
        for child, (host, port) in zip(self.children, backends, strict=True):
            wait_until(answers_ok(f"http://{host}:{port}/healthz"), child, child.name, 60)
            log(f"{child.name} ready on {host}:{port}")

        main_conf = nginxconf.write_native_config(
            self.data_dir / "nginx",
            {
                "NGINX_PORT": f"127.0.0.1:{self.port}",
                "BACKEND_SERVERS": nginxconf.upstream_servers(backends),
                "IMAGES_DIR": str(images_dir),
                "STATIC_DIR": str(REPO_ROOT / "static"),
                **self._nginx_storage_variables(storage_env),
            },
            user=invoking_account() if os.geteuid() == 0 else None,
        )
        nginx = spawn("nginx", nginxconf.nginx_command(main_conf))
        self.children.append(nginx)
        wait_until(answers_ok(f"{self.url}/healthz"), nginx, "nginx", 30)

    def _storage_env(self) -> dict[str, str]:
        """The storage settings the backends get: the environment's (STORAGE, S3_*), or a
        throwaway SeaweedFS's with --seaweedfs."""
        if self.seaweedfs is None:
            return {}
        log(f"starting SeaweedFS in {self.seaweedfs.directory}")
        self.seaweedfs.start()
        log(f"SeaweedFS S3 ready at {self.seaweedfs.endpoint_url} (log: {self.seaweedfs.log_path})")
        return self.seaweedfs.app_env()

    def _nginx_storage_variables(self, storage_env: dict[str, str]) -> dict[str, str]:
        settings = os.environ | storage_env
        storage = settings.get("STORAGE", "local").strip().lower() or "local"
        if storage != "s3":
            return {"STORAGE": "local"}
        endpoint = settings.get("S3_ENDPOINT_URL", "")
        bucket = settings.get("S3_BUCKET") or "images"
        try:
            variables = nginxconf.s3_variables(endpoint, bucket, self.data_dir / "nginx" / "cache")
        except ValueError as exc:
            raise StackError(str(exc)) from exc
        return {"STORAGE": "s3", **variables}

    def _start_cluster(self) -> str:
        self.cluster = PostgresCluster(self.data_dir / "postgres", durable=True)
        log(f"starting PostgreSQL in {self.cluster.directory}")
        self.cluster.init()
        self.cluster.start()
        log(f"PostgreSQL ready on port {self.cluster.port} (log: {self.cluster.log_path})")
        return self.cluster.url(DATABASE_NAME)

    def watch(self) -> Child:
        """Block until a child exits; return it."""
        while True:
            for child in self.children:
                if child.process.poll() is not None:
                    return child
            if self.seaweedfs is not None and self.seaweedfs.process is not None:
                if self.seaweedfs.process.poll() is not None:
                    return Child("seaweedfs", self.seaweedfs.process)
            if self.cluster is not None and not self.cluster.running:
                assert self.cluster.process is not None
                return Child("postgres", self.cluster.process)
            time.sleep(0.2)

    def stop(self) -> None:
        """nginx first (no new requests), then the backends, then the database."""
        for child in reversed(self.children):
            child.stop()
        if self.seaweedfs is not None:
            self.seaweedfs.stop()
        if self.cluster is not None:
            self.cluster.stop()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="local-stack",
        description="Run PostgreSQL, the backend processes and nginx natively.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="through make (installs what is missing first):\n"
        '  make run ARGS="--port 8081 --workers 4"\n\n'
        "<data-dir>/stack.env names the database and the images folder, for\n"
        "  bash backup.sh --env-file .data/stack.env\n"
        "  .venv/bin/python -m server --env-file .data/stack.env check  (or: make check)",
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="nginx port on 127.0.0.1 (0: pick a free one)"
    )
    parser.add_argument("--workers", type=int, default=2, help="backend processes (default 2)")
    parser.add_argument(
        "--database-url",
        help="use this PostgreSQL (database created if missing) instead of a cluster in DIR",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=REPO_ROOT / ".data",
        help="where images, the cluster and nginx's files live (default: .data/)",
    )
    parser.add_argument(
        "--seaweedfs",
        action="store_true",
        help="start a throwaway SeaweedFS in DIR/seaweedfs and store images there (STORAGE=s3)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stack = LocalStack(args)
    try:
        ensure_port_free(stack.port)
    except StackError as exc:
        log(f"error: {exc}")
        return 1

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        raise StopRequested(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    status = 0
    try:
        stack.start()
        print(f"ready {stack.url}", flush=True)
        died = stack.watch()
        log(f"{died.name} exited unexpectedly (status {died.process.returncode}); stopping")
        status = 1
    except StopRequested as stop:
        log(f"{stop} received; stopping")
    except (StackError, ClusterError, SeaweedError, OSError) as exc:
        log(f"error: {exc}")
        status = 1
    finally:
        # A second Ctrl-C must not interrupt the orderly shutdown half-way.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        log("stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
