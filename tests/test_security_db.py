"""Security behaviour that lives next to the database: admin sessions that logging out ends
everywhere, and a pool that answers at once while the database is known to be down (a real
PostgreSQL behind a TCP relay the test can cut)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from server.access import AccessPolicy
from server.config import Config
from server.db import FailFastPool, make_pool, migrate, open_pool
from server.errors import NotAuthenticated
from server.workers import ImageWorkers
from tests.support import InProcessApp, PostgresServer, in_process_app


class Relay:
    """A TCP relay to PostgreSQL; `cut()` drops every connection and refuses new ones
    (what a crashed or unreachable database looks like), `restore()` undoes it."""

    def __init__(self, target_url: str) -> None:
        params = psycopg.conninfo.conninfo_to_dict(target_url)
        self.target = (str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
        self.target_url = target_url
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return psycopg.conninfo.make_conninfo(self.target_url, host="127.0.0.1", port=self.port)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    restore = start

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.05)


@pytest.fixture
async def relayed(
    postgres: PostgresServer, image_workers: ImageWorkers, tmp_path: Path
) -> AsyncIterator[tuple[Relay, InProcessApp]]:
    """The app on a database reached through a relay, wired as `serve` wires it."""
    relay = Relay(postgres.create_database())
    await relay.start()
    config = Config.from_env(
        {}, database_url=relay.url, images_dir=tmp_path, db_pool_max=2, worker_name="relayed"
    )
    try:
        async with in_process_app(config, image_workers) as app:
            # A pool timeout far longer than the test may wait: only the fast path can pass.
            app.pool.timeout = 120
            assert isinstance(app.pool, FailFastPool) and app.pool.database_up is not None
            await until(app.pool.database_up.is_set)
            yield relay, app
    finally:
        await relay.cut()


async def test_requests_fail_at_once_while_the_listener_reports_the_database_down(
    relayed: tuple[Relay, InProcessApp],
) -> None:
    """Failed before: every request waited the whole pool timeout for its 503."""
    relay, app = relayed
    assert isinstance(app.pool, FailFastPool) and app.pool.database_up is not None
    up = app.pool.database_up
    async with app.client() as client:
        assert (await client.get("/healthz")).status_code == 200
        await relay.cut()
        await until(lambda: not up.is_set())
        for path in ("/healthz", "/images/", "/view/1"):
            async with asyncio.timeout(30):  # the pool's own timeout is 120 s
                response = await client.get(path, headers={"Accept": "application/json"})
            assert response.status_code == 503
            assert "temporarily unavailable" in response.json()["error"]
        # The database comes back: requests succeed again, even before the listener does.
        await relay.restore()
        async with asyncio.timeout(30):
            while (await client.get("/healthz")).status_code != 200:
                await asyncio.sleep(0.1)


@pytest.fixture
async def sessions_pool(unit_database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = make_pool(Config.from_env({}, database_url=unit_database_url, db_pool_max=2))
    await open_pool(pool)
    await migrate(pool)
    try:
        yield pool
    finally:
        await pool.close()


async def test_admin_sessions_end_at_logout_and_with_a_new_password(
    sessions_pool: AsyncConnectionPool,
) -> None:
    """Failed before: the admin cookie's marker was the same for every session and nothing
    on the server could end one."""
    access = AccessPolicy("secret", sessions_pool=sessions_pool)
    with pytest.raises(NotAuthenticated):
        await access.open_admin_session("wrong")
    first = await access.open_admin_session("secret")
    second = await access.open_admin_session("secret")
    assert first != second
    assert await access.is_admin_session(first) and await access.is_admin_session(second)
    await access.close_admin_session(first)
    assert not await access.is_admin_session(first)
    assert await access.is_admin_session(second)  # another browser stays signed in
    assert not await access.is_admin_session("made-up")
    assert not await access.is_admin_session(None)
    # A new ADMIN_PASSWORD ends every session opened with the old one.
    changed = AccessPolicy("new secret", sessions_pool=sessions_pool)
    assert not await changed.is_admin_session(second)
    # Without an admin password nothing is an admin session.
    assert not await AccessPolicy(sessions_pool=sessions_pool).is_admin_session(second)
    # Only hashes are stored.
    async with sessions_pool.connection() as conn:
        rows = await (await conn.execute("SELECT id_hash FROM admin_sessions")).fetchall()
    assert rows and all(second not in row[0] for row in rows)
