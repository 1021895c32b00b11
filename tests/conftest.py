"""Shared fixtures: a real PostgreSQL (TEST_DATABASE_URL or a throwaway cluster), a real
native stack (nginx + 2 backend processes via scripts/local-stack), the domain services on
a fresh database, and a bare backend process. Helpers that are not fixtures: support.py."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import sync_playwright
from psycopg_pool import AsyncConnectionPool

from scripts.chromium import CHROMIUM, CHROMIUM_ARGS
from scripts.launch import running_stack
from scripts.pgcluster import PostgresCluster
from scripts.seaweed import SeaweedFS
from server.config import Config
from server.db import make_pool, migrate, open_pool
from server.gallery import Gallery
from server.storage import LocalImageStore
from server.workers import ImageWorkers
from tests.backup_fixtures import OwnStack, own_stack
from tests.support import (
    TWO_HOSTS_BUCKET,
    Browser,
    Bucket,
    InProcessApp,
    PostgresServer,
    Stack,
    in_process_app,
    start_backend,
    stop_backend,
    wait_until_healthy,
)

# The tiers (README "Test it"). A test that reaches nginx through one of these fixtures is
# `stack`, one that drives Chromium is `browser`; tests that start nginx on their own say so
# with `pytestmark`. `make test-fast` runs the rest: PostgreSQL, the app in process, bare
# backend processes.
_STACK_FIXTURES = {
    "stack",
    "s3_stack",
    "site",
    "two_hosts",
    "own_running",
    "fake_repo",
    "nginx_without_backend",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _STACK_FIXTURES:
            item.add_marker(pytest.mark.stack)
        if "chromium" in fixtures:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        server = PostgresServer(admin_url=url)
        yield server
        server.drop_all()
        return
    # A short path: PostgreSQL's unix socket path is limited to 107 bytes.
    directory = Path(f"/tmp/ih-pg-{secrets.token_hex(4)}")
    cluster = PostgresCluster(directory)
    cluster.init()
    cluster.start()
    try:
        yield PostgresServer(admin_url=cluster.url("postgres"), cluster=cluster)
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """A real SeaweedFS (S3 gateway) for the whole run; each user picks its own bucket."""
    store = SeaweedFS(
        Path(tempfile.mkdtemp(prefix="ih-weed-", dir="/tmp")),
        public_buckets=(TWO_HOSTS_BUCKET,),
    )
    store.start()
    try:
        yield store
    finally:
        store.remove()


@pytest.fixture(scope="session")
def stack(postgres: PostgresServer) -> Iterator[Stack]:
    database_url = postgres.create_database()
    # The suite uploads far faster than a person; the default per-address rate limits are
    # tested on a stack of their own (tests/test_security.py).
    unlimited = {"NGINX_UPLOAD_RATE": "100000r/s", "NGINX_UPLOAD_BURST": "100000"}
    with running_stack(workers=2, database_url=database_url, env=unlimited) as running:
        yield Stack(running, database_url)


@pytest.fixture(scope="session")
def s3_stack(postgres: PostgresServer, seaweedfs: SeaweedFS) -> Iterator[Stack]:
    """Like `stack`, with STORAGE=s3 on the test SeaweedFS (bucket "images")."""
    database_url = postgres.create_database()
    env = {"NGINX_UPLOAD_RATE": "100000r/s", "NGINX_UPLOAD_BURST": "100000"}
    env |= seaweedfs.app_env()
    with running_stack(workers=2, database_url=database_url, env=env) as running:
        yield Stack(running, database_url, Bucket(seaweedfs, seaweedfs.bucket), seaweedfs.app_env())


@pytest.fixture
def site(request: pytest.FixtureRequest) -> Stack:
    """The stack with an empty gallery: the local folder's, or with `BOTH_STORES` each in
    turn ("local", "s3")."""
    storage = getattr(request, "param", "local")
    stack: Stack = request.getfixturevalue("stack" if storage == "local" else "s3_stack")
    stack.wipe()
    return stack


@pytest.fixture(scope="session")
def own_running(postgres: PostgresServer) -> Iterator[OwnStack]:
    """A stack for backups and restores alone: restores replace its whole database under
    its running backends."""
    with own_stack(postgres.create_database()) as stack:
        yield stack


@pytest.fixture
def own(own_running: OwnStack) -> OwnStack:
    """That stack with no rows and an empty images folder, as after losing the volume."""
    own_running.wipe()
    return own_running


@pytest.fixture
def browser(site: Stack) -> Iterator[Browser]:
    with Browser(site.url) as client:
        yield client


@pytest.fixture(scope="session")
def unit_database_url(postgres: PostgresServer) -> str:
    """A database of its own for tests that use the domain modules directly."""
    return postgres.create_database()


@pytest.fixture
async def pool(unit_database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    """An open, migrated pool on an empty `images` table."""
    config = Config.from_env({}, database_url=unit_database_url, db_pool_max=4)
    pool = make_pool(config)
    await open_pool(pool)
    await migrate(pool)
    async with pool.connection() as conn:
        await conn.execute("TRUNCATE images RESTART IDENTITY")
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
async def solo_backend(
    unit_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """One backend process on a free port, without nginx in front."""
    images = tmp_path_factory.mktemp("solo")
    process, url = await start_backend(unit_database_url, images, log=False)
    try:
        await wait_until_healthy(url)
        yield url
    finally:
        await stop_backend(process)


# Module scope, not session: while Playwright's sync API is alive it marks its own event
# loop as running in this thread, so pytest-asyncio could not run async tests meanwhile.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def image_workers() -> Iterator[ImageWorkers]:
    workers = ImageWorkers(processes=2)
    yield workers
    workers.shutdown()


@pytest.fixture
def store(tmp_path: Path) -> LocalImageStore:
    """An empty images folder."""
    store = LocalImageStore(tmp_path / "images")
    store.ensure()
    return store


@pytest.fixture
async def gallery(
    pool: AsyncConnectionPool, store: LocalImageStore, image_workers: ImageWorkers
) -> AsyncIterator[Gallery]:
    """The use cases on an empty database and an empty images folder, default settings."""
    gallery = Gallery.from_config(Config.from_env({}), pool, store, image_workers)
    yield gallery
    await gallery.settle()  # no thumbnail task outlives its test (and its pool)


@pytest.fixture(scope="session")
async def app(
    postgres: PostgresServer,
    image_workers: ImageWorkers,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[InProcessApp]:
    """The in-process tier: `make_app` served on an unused port in the test's own event loop
    (no nginx, no subprocess), on a database of its own. Talk to it with an async client."""
    config = Config.from_env(
        {},
        database_url=postgres.create_database(),
        images_dir=tmp_path_factory.mktemp("in-process"),
        db_pool_max=4,
        worker_name="in-process",
    )
    async with in_process_app(config, image_workers) as running:
        yield running
