"""scripts/local-stack and PostgresCluster, without the real backend: the cluster's lifecycle
(as root too), and the stack's orchestration with a stand-in `python -m server` in a copy of
the repository's tooling (ready line, round-robin, files from disk, clean stops)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from scripts.pgcluster import ClusterError, PostgresCluster, blocking_ancestor

REPO = Path(__file__).resolve().parent.parent

STAND_IN_BACKEND = '''
"""Stand-in for the real backend: /healthz checks the database, the rest echoes the request."""
import argparse, json, os, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            try:
                psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=2).close()
            except psycopg.Error:
                return self.reply(503, {"status": "down"})
        self.reply(200, {
            "worker": os.environ["WORKER_NAME"],
            "pid": os.getpid(),
            "images_dir": os.environ["IMAGES_DIR"],
            "headers": dict(self.headers),
        })

    def log_message(self, *args):
        pass


parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()
server = ThreadingHTTPServer((args.host, args.port), Handler)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
try:
    server.serve_forever()
except SystemExit:
    pass
'''


# -- PostgresCluster ----------------------------------------------------------------------


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder every account can pass through (pytest's tmp_path is private to its user,
    and when root PostgreSQL runs as another account)."""
    folder = Path(tempfile.mkdtemp(prefix="ih-test-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_cluster_starts_restarts_and_stops() -> None:
    with PostgresCluster() as cluster:
        assert cluster.running
        assert cluster.create_database("images_db") is True
        assert cluster.create_database("images_db") is False
        url = cluster.url("images_db")
        assert url == f"postgresql://postgres@127.0.0.1:{cluster.port}/images_db"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        assert (cluster.socket_dir / f".s.PGSQL.{cluster.port}").exists()
        if os.geteuid() == 0:  # initdb and postgres refuse root: they run as postgres
            owner = pwd.getpwuid(cluster.data_dir.stat().st_uid).pw_name
            assert owner == "postgres"

        port = cluster.port
        cluster.restart()
        assert cluster.port == port
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (42,)

        cluster.stop()
        assert not cluster.running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        cluster.start()  # a stopped cluster starts again with its data
        cluster.drop_database("images_db")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
    assert not cluster.directory.exists()  # a temporary cluster removes itself


def test_blocking_ancestor_names_the_folder_that_stops_another_account(open_dir: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    private = open_dir / "private"
    (private / "inner").mkdir(parents=True)
    private.chmod(0o700)
    assert blocking_ancestor(private / "inner" / "cluster", nobody) == private
    private.chmod(0o711)
    assert blocking_ancestor(private / "inner" / "cluster", nobody) is None


def test_cluster_explains_an_unreachable_directory_when_root(open_dir: Path) -> None:
    private = open_dir / "private"
    private.mkdir(mode=0o700)
    cluster = PostgresCluster(private / "cluster")
    if os.geteuid() == 0:
        with pytest.raises(ClusterError, match=str(private)):
            cluster.init()
    else:  # the cluster runs as the invoking user, who can reach its own folders
        cluster.init()
        assert (cluster.data_dir / "PG_VERSION").exists()


# -- scripts/local-stack with a stand-in backend --------------------------------------------


@pytest.fixture(scope="module")
def fake_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stack's own files, next to a stand-in `server` package."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(REPO / "scripts", root / "scripts", ignore=shutil.ignore_patterns("__py*"))
    shutil.copytree(REPO / "nginx", root / "nginx")
    shutil.copytree(REPO / "static" / "errors", root / "static" / "errors")
    (root / "server").mkdir()
    (root / "server" / "__init__.py").write_text("")
    (root / "server" / "__main__.py").write_text(STAND_IN_BACKEND)
    # The real settings: nginx's body cap is computed from MAX_UPLOAD_MB as the app reads it.
    shutil.copy(REPO / "server" / "config.py", root / "server" / "config.py")
    return root


@pytest.fixture
def data_dir(open_dir: Path) -> Path:
    return open_dir / "data"


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def ports_in_use(self) -> list[int]:
        """The TCP ports the stack's pieces listen on, read from their own files."""
        ports = [int(self.url.rsplit(":", 1)[1])]
        pid_file = self.data_dir / "postgres" / "pgdata" / "postmaster.pid"
        if pid_file.exists():
            ports.append(int(pid_file.read_text().splitlines()[3]))
        return ports


def start_stack(repo: Path, data_dir: Path, *args: str) -> RunningStack:
    log_path = data_dir.parent / "stack.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(repo / "scripts" / "local-stack"), "--port=0", f"--data-dir={data_dir}", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=os.environ | {"PYTHON": sys.executable},
        )
    assert process.stdout is not None
    line = process.stdout.readline()  # the stack prints this line once everything answers
    if not line.startswith("ready "):
        process.wait(30)
        process.stdout.close()
        raise AssertionError(f"no ready line ({line!r}):\n{log_path.read_text()}")
    word, url = line.split()
    assert url.startswith("http://127.0.0.1:")
    return RunningStack(process, url, data_dir, log_path)


def finish(stack: RunningStack, timeout: float = 60) -> tuple[int, str]:
    """Wait for the stack to exit; return its status and what it printed after `ready`."""
    try:
        stack.process.wait(timeout)
    finally:
        if stack.process.poll() is None:
            stack.process.kill()
            stack.process.wait()
        assert stack.process.stdout is not None
        extra = stack.process.stdout.read()
        stack.process.stdout.close()
    return stack.process.returncode, extra


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_stack_serves_through_nginx_and_stops_on_sigterm(fake_repo: Path, data_dir: Path) -> None:
    stack = start_stack(fake_repo, data_dir, "--workers=2")
    try:
        ports = stack.ports_in_use()
        assert len(ports) == 2  # nginx and the stack's own PostgreSQL
        with httpx.Client(base_url=stack.url, timeout=10) as client:
            seen = [client.get("/whoami").json() for _ in range(6)]
            # Round-robin over both processes, each configured by the stack.
            assert {s["worker"] for s in seen} == {"worker-1", "worker-2"}
            assert {s["images_dir"] for s in seen} == {str(data_dir / "images")}
            headers = seen[0]["headers"]
            assert headers["Host"] == stack.url.removeprefix("http://")
            assert headers["X-Forwarded-Proto"] == "http"
            assert headers["X-Forwarded-For"] == "127.0.0.1"

            name = "ab" * 16 + ".gif"
            (data_dir / "images" / name).write_bytes(b"GIF89a")
            image = client.get(f"/images/{name}")
            assert image.status_code == 200
            assert image.headers["content-type"] == "image/gif"
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{ports[1]}/images_db", connect_timeout=5
        ):
            pass  # the stack created the database
    finally:
        stack.process.send_signal(signal.SIGTERM)
        status, extra = finish(stack)
    assert status == 0, stack.log()
    assert extra == ""  # stdout carries the ready line only
    assert not any(listening(port) for port in ports), stack.log()


def test_stack_stops_everything_when_a_backend_dies(fake_repo: Path, data_dir: Path) -> None:
    stack = start_stack(fake_repo, data_dir, "--workers=2")
    ports = stack.ports_in_use()
    try:
        pid = httpx.get(f"{stack.url}/whoami", timeout=10).json()["pid"]
        os.kill(pid, signal.SIGKILL)
    finally:
        status, _ = finish(stack)
    assert status != 0
    assert "exited unexpectedly" in stack.log()
    assert not any(listening(port) for port in ports), stack.log()


def test_stack_uses_a_given_database_and_creates_it(fake_repo: Path, data_dir: Path) -> None:
    with PostgresCluster() as cluster:
        url = cluster.url("stack_given_db")
        stack = start_stack(fake_repo, data_dir, "--workers=1", f"--database-url={url}")
        try:
            assert httpx.get(f"{stack.url}/healthz", timeout=10).status_code == 200
            assert not (data_dir / "postgres").exists()  # no cluster of its own
        finally:
            stack.process.send_signal(signal.SIGINT)
            status, _ = finish(stack)
        assert status == 0, stack.log()
        assert cluster.create_database("stack_given_db") is False


def test_stack_reports_a_backend_that_never_becomes_healthy(
    fake_repo: Path, data_dir: Path
) -> None:
    url = "postgresql://postgres@127.0.0.1:1/images_db"  # nothing listens there
    started = time.monotonic()
    result = subprocess.run(
        [str(fake_repo / "scripts" / "local-stack"), "--port=0", f"--data-dir={data_dir}"]
        + [f"--database-url={url}"],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHON": sys.executable},
        timeout=90,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "cannot reach or prepare the database" in result.stderr
    assert time.monotonic() - started < 60
