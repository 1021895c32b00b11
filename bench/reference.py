"""The references `make bench` measures against, run the same way as the product: behind the
shipped nginx template, on the same machine, in the same run.

- `python -m bench.reference PORT`: a Tornado app whose every handler answers a constant
  (the framework's ceiling for a page; it also takes and discards uploads).
- `reference_site(workers, static_dir)`: N of those behind nginx, whose `/static/` serves
  `static_dir` (the ceiling for nginx sending a file from disk).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import tornado.ioloop
import tornado.web

from bench.common import UNLIMITED
from scripts import nginxconf
from scripts.pgcluster import free_port
from scripts.stack import invoking_account

REPO = Path(__file__).resolve().parent.parent
BODY = b"<!doctype html><title>constant</title><p>ok</p>"


class ConstantHandler(tornado.web.RequestHandler):
    def get(self, *_args: str) -> None:
        self.write(BODY)

    def post(self, *_args: str) -> None:
        self.set_status(201)
        self.write(BODY)


def serve(port: int) -> None:
    app = tornado.web.Application([(r"/.*", ConstantHandler)])
    app.listen(port, "127.0.0.1", xheaders=True, max_body_size=7 * 1024 * 1024)
    tornado.ioloop.IOLoop.current().start()


def wait_for(url: str, timeout: float = 20) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def reference_site(workers: int, static_dir: Path) -> Iterator[str]:
    """N constant backends behind nginx rendered from the shipped template; yields its URL."""
    runtime = Path(tempfile.mkdtemp(prefix="ih-ref-", dir="/tmp"))
    os.chmod(runtime, 0o755)
    ports = [free_port() for _ in range(workers)]
    children = [
        subprocess.Popen([sys.executable, "-m", "bench.reference", str(port)], cwd=REPO)
        for port in ports
    ]
    nginx = None
    try:
        for port in ports:
            wait_for(f"http://127.0.0.1:{port}/")
        port = free_port()
        main = nginxconf.write_native_config(
            runtime / "nginx",
            {
                "NGINX_PORT": f"127.0.0.1:{port}",
                "BACKEND_SERVERS": nginxconf.upstream_servers(("127.0.0.1", p) for p in ports),
                "IMAGES_DIR": str(runtime / "images"),
                "STATIC_DIR": str(static_dir),
                **UNLIMITED,
            },
            user=invoking_account() if os.geteuid() == 0 else None,
        )
        nginx = subprocess.Popen(nginxconf.nginx_command(main), stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_for(url + "/")
        with urllib.request.urlopen(url + "/images/", timeout=5) as answer:  # noqa: S310
            if nginx.poll() is not None or answer.read() != BODY:
                raise RuntimeError(f"something else answers on port {port}")
        yield url
    finally:
        for child in [*children, *([nginx] if nginx else [])]:
            child.send_signal(signal.SIGTERM)
        for child in [*children, *([nginx] if nginx else [])]:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
