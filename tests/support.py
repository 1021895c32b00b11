"""Helpers the tests share that are not fixtures (those live in conftest.py): the test
PostgreSQL server, a running native stack, an HTTP client that acts like one browser, a
bare backend process, and what one upload leaves on disk."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pytest
import tornado.web
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from tornado.testing import bind_unused_port

from scripts import nginxconf
from scripts.launch import RunningStack
from scripts.pgcluster import PostgresCluster, free_port
from scripts.seaweed import SeaweedFS
from server.app import http_server, make_app, watch_events
from server.config import Config
from server.db import make_pool, migrate, open_pool
from server.events import EventHub
from server.formats import THUMB_SIDES, thumb_name
from server.gallery import Gallery
from server.storage import LocalImageStore
from server.workers import ImageWorkers

REPO = Path(__file__).resolve().parent.parent
# The bucket both stacks of the two-host test share (nginx reads it anonymously, GET only).
TWO_HOSTS_BUCKET = "two-hosts"
# Tests that touch stored files run once per store: `@BOTH_STORES` (or `pytestmark = ...`).
BOTH_STORES = pytest.mark.parametrize("site", ["local", "s3"], indirect=True)


class Bucket:
    """A bucket of the test SeaweedFS, seen with boto3 directly (not through the app)."""

    def __init__(self, store: SeaweedFS, name: str) -> None:
        self.name = name
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=store.endpoint_url,
            aws_access_key_id=store.access_key,
            aws_secret_access_key=store.secret_key,
            region_name="us-east-1",
        )

    def keys(self) -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def remove(self, *keys: str) -> None:
        for key in keys:
            self.client.delete_object(Bucket=self.name, Key=key)

    def empty(self) -> None:
        self.remove(*self.keys())


@dataclass
class PostgresServer:
    """Where test databases are created; `restart()` drops every client connection."""

    admin_url: str
    cluster: PostgresCluster | None = None
    created: list[str] = field(default_factory=list)

    def url(self, dbname: str) -> str:
        return psycopg.conninfo.make_conninfo(self.admin_url, dbname=dbname)

    def create_database(self, encoding: str | None = None) -> str:
        """A new database; `encoding` (e.g. "SQL_ASCII") makes it from template0 with that
        encoding and the C locale instead of the server's default."""
        name = f"imagehosting_test_{secrets.token_hex(4)}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if encoding is not None:
            statement += sql.SQL(" ENCODING {} TEMPLATE template0 LOCALE 'C'").format(
                sql.Literal(encoding)
            )
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)
        self.created.append(name)
        return self.url(name)

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.created:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    def restart(self, dbname: str) -> None:
        """A real restart of our own cluster; on a shared server (TEST_DATABASE_URL) the
        closest safe equivalent: terminate every session of the test database."""
        if self.cluster is not None:
            self.cluster.restart()
            return
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )


@dataclass
class Stack:
    """A running scripts/local-stack (nginx + two backend processes) and its database."""

    running: RunningStack
    database_url: str
    bucket: Bucket | None = None  # STORAGE=s3: where its images are instead of images_dir
    storage_env: dict[str, str] = field(default_factory=dict)  # its backends' STORAGE, S3_*

    @property
    def env(self) -> dict[str, str]:
        """Settings for `python -m server <command>` on this stack's data."""
        return {"DATABASE_URL": self.database_url, "IMAGES_DIR": str(self.images_dir)} | (
            self.storage_env
        )

    @property
    def storage(self) -> str:
        return "local" if self.bucket is None else "s3"

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def images_dir(self) -> Path:
        return self.running.images_dir

    def files(self) -> set[str]:
        """The stored images and thumbnails: files of the folder, or keys of the bucket."""
        if self.bucket is not None:
            return self.bucket.keys()
        return set(files_in(self.images_dir))

    def read(self, name: str) -> bytes:
        if self.bucket is not None:
            return self.bucket.get(name)
        return (self.images_dir / name).read_bytes()

    def lose(self, name: str) -> None:
        """Remove a stored file behind the app's back."""
        if self.bucket is not None:
            self.bucket.remove(name)
        else:
            (self.images_dir / name).unlink()

    def rows(self) -> int:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM images").fetchone()
            assert row is not None
            return int(row[0])

    def wipe(self) -> None:
        """Empty the gallery (rows and files) between tests."""
        with psycopg.connect(self.database_url) as conn:
            conn.execute("TRUNCATE images RESTART IDENTITY")
            # A change behind the app's back: tell the backends, as restore.sh does, so their
            # page caches forget the old gallery (then make sure both did).
            conn.execute("SELECT pg_notify('image_events', '{\"type\": \"resync\"}')")
        for path in self.images_dir.rglob("*"):
            if path.is_file():  # the thumbs/ folder stays: the backends made it at start
                path.unlink()
        if self.bucket is not None:
            self.bucket.empty()
        self.wait_until_backends_show_no_images()

    def wait_until_backends_show_no_images(self, timeout: float = 15) -> None:
        """Until four pages in a row (nginx alternates between the two backends) are empty;
        at once when the stack does not answer."""
        deadline = time.monotonic() + timeout
        empty_in_a_row = 0
        while empty_in_a_row < 4:
            try:
                got = httpx.get(f"{self.url}/images/", headers={"Accept": "application/json"})
            except httpx.TransportError:
                return  # not running: no backend holds a page
            if got.status_code >= 500:
                return
            empty = got.status_code == 200 and got.json()["total"] == 0
            empty_in_a_row = empty_in_a_row + 1 if empty else 0
            if not empty:
                assert time.monotonic() < deadline, "the backends still show images"
                time.sleep(0.05)


def files_in(root: Path) -> list[str]:
    """Every file under an images folder, sorted (thumbnails as `thumbs/<name>`)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def stored_files(filename: str) -> set[str]:
    """What one upload leaves in the images folder: the file and its thumbnails."""
    return {filename, *(thumb_name(filename, side) for side in THUMB_SIDES)}


class Browser(httpx.Client):
    """An HTTP client that behaves like one browser: cookies, and the XSRF token echoed."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url=base_url, timeout=30)

    @property
    def xsrf(self) -> str:
        if "_xsrf" not in self.cookies:
            self.get("/upload/").raise_for_status()  # a page visit sets the cookie
        return self.cookies["_xsrf"]

    def upload(
        self,
        name: str,
        data: bytes,
        *,
        accept: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST one file; a JSON answer of 201 returns once the image's thumbnails exist (the
        upload answers first and makes them afterwards), as most tests expect."""
        response = self.post(
            "/upload/",
            files={"file": (name, data, "application/octet-stream")},
            headers={"X-XSRFToken": self.xsrf, "Accept": accept, **(headers or {})},
        )
        if response.status_code == 201 and "json" in response.headers["Content-Type"]:
            self.wait_for_thumbnails(response.json()["id"])
        return response

    def wait_for_thumbnails(self, image_id: int, timeout: float = 30) -> dict[str, Any]:
        """The image object once it has thumbnails (or once the image is gone: {})."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.get(f"/view/{image_id}", headers={"Accept": "application/json"})
            if got.status_code == 404:
                return {}
            got.raise_for_status()
            if got.json()["thumb_url"] is not None:
                return dict(got.json())
            if time.monotonic() > deadline:
                raise TimeoutError(f"image {image_id} got no thumbnails in {timeout} s")
            time.sleep(0.05)

    def remove(self, image_id: int) -> httpx.Response:
        return self.delete(
            f"/delete/{image_id}",
            headers={"X-XSRFToken": self.xsrf, "Accept": "application/json"},
        )


@asynccontextmanager
async def inserts_refused_for(pool: AsyncConnectionPool, owner_hash: str) -> AsyncIterator[str]:
    """A real constraint failure (no mock) for every insert by `owner_hash` while inside;
    yields the constraint's name, which the database's error message carries."""
    constraint = "test_refuse_owner"
    async with pool.connection() as conn:
        await conn.execute(
            f"ALTER TABLE images ADD CONSTRAINT {constraint}"
            f" CHECK (owner_hash <> '{owner_hash}') NOT VALID"
        )
    try:
        yield constraint
    finally:
        async with pool.connection() as conn:
            await conn.execute(f"ALTER TABLE images DROP CONSTRAINT {constraint}")


async def start_backend(
    database_url: str, images_dir: Path, *, log: bool = True, env: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    """`python -m server` (worker "solo") on a free port, without nginx, with `env` added to
    its environment; its log is piped to `process.stderr` when `log` (read it: a full pipe
    would stall the process). Returns the process and its base URL at once: see
    `wait_until_healthy`."""
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": database_url,
        "IMAGES_DIR": str(images_dir),
        "WORKER_NAME": "solo",
        **(env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "server", "--port", str(port)),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if log else subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}"


async def wait_until_healthy(url: str, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout), httpx.AsyncClient(base_url=url) as client:
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def stop_backend(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
        await process.wait()


@dataclass
class InProcessApp:
    """The application of the `app` fixture, its address and its database pool."""

    application: tornado.web.Application
    url: str
    pool: AsyncConnectionPool

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, **kwargs)


@asynccontextmanager
async def in_process_app(
    config: Config, image_workers: ImageWorkers, cookie_secret: str | None = None
) -> AsyncIterator[InProcessApp]:
    """`make_app` for `config` (its database must exist) served on an unused port in the
    running event loop, wired as `server.app.serve` wires it; apps that play processes of
    one site share a `cookie_secret` (a fresh one otherwise)."""
    store = LocalImageStore(config.images_dir)
    store.ensure()
    pool = make_pool(config)
    await open_pool(pool)
    await migrate(pool)
    hub = EventHub(config.database_url)
    await hub.start()
    pool.database_up = hub.connected
    gallery = Gallery.from_config(config, pool, store, image_workers)
    watch_events(gallery, hub)
    application = make_app(
        config,
        gallery=gallery,
        hub=hub,
        cookie_secret=cookie_secret or secrets.token_urlsafe(32),
        image_workers=image_workers,
    )
    sock, port = bind_unused_port()
    server = http_server(application, config)
    server.add_sockets([sock])
    try:
        yield InProcessApp(application, f"http://127.0.0.1:{port}", pool)
    finally:
        server.stop()
        await server.close_all_connections()
        await hub.stop()
        await pool.close()


@contextmanager
def running_nginx(main: Path, url: str) -> Iterator[subprocess.Popen[bytes]]:
    """nginx run with the config `main`, once it answers at `url` (a static file: no backend
    needed); stopped afterwards."""
    process = subprocess.Popen(
        nginxconf.nginx_command(main), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/static/errors/errors.css", timeout=10)
                break
            except httpx.TransportError:
                assert process.poll() is None, "nginx exited at start"
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(15)
