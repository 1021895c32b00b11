"""Database pool lifecycle and schema migrations (versioned SQL files, applied once)."""

from __future__ import annotations

import asyncio
import select
from pathlib import Path

import psycopg
from loguru import logger
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from server.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# How long a request waits for a connection while the database is known to be down (the
# full pool timeout otherwise): long enough to notice it came back, short enough to answer
# 503 at once.
FAST_FAIL_SECONDS = 0.5
# Any constant works; it only has to be the same in every backend process.
_MIGRATION_LOCK_ID = 0x1A6E_4057


async def check_connection(conn: psycopg.AsyncConnection) -> None:
    """Is a connection taken from the pool still usable? Raises when it is not.

    A round trip on every checkout (psycopg_pool's own check) cost a third of a gallery
    request. An idle connection receives nothing unless the server closed it (a restart, an
    idle timeout) or sent a notice, so its socket turns readable only then: a non-blocking
    poll, a local system call, decides whether the round trip is needed at all."""
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        await AsyncConnectionPool.check_connection(conn)


class FailFastPool(AsyncConnectionPool):
    """A pool that stops waiting for a database it knows is down.

    `database_up` is the event listener's view (server.events.EventHub.connected): cleared
    the moment its connection breaks, set again once it listens. While it is clear, a
    checkout waits FAST_FAIL_SECONDS instead of the full timeout, so with the database gone
    every request gets its 503 at once instead of after five seconds."""

    database_up: asyncio.Event | None = None

    async def getconn(self, timeout: float | None = None) -> psycopg.AsyncConnection:
        if timeout is None and self.database_up is not None and not self.database_up.is_set():
            timeout = min(self.timeout, FAST_FAIL_SECONDS)
        return await super().getconn(timeout)


def make_pool(config: Config) -> FailFastPool:
    """A closed pool; `open_pool` opens it. Broken connections are checked out and replaced,
    so the pool heals by itself after the database restarts."""
    return FailFastPool(
        config.database_url,
        min_size=config.db_pool_min,
        max_size=config.db_pool_max,
        open=False,
        timeout=5.0,
        check=check_connection,
        # Autocommit: a read is one round trip, not three (BEGIN, query, COMMIT); writes
        # that need several statements say so with `conn.transaction()`. Generic plans: our
        # queries are few and simple, and the gallery page query (psycopg prepares it after
        # a few runs) would otherwise be planned again on every request, tripling its cost.
        kwargs={"autocommit": True, "options": "-c plan_cache_mode=force_generic_plan"},
        name=f"images-{config.worker_name}",
    )


async def open_pool(pool: AsyncConnectionPool, attempts: int = 30) -> None:
    """Open the pool, waiting for the database to accept connections (it may still be starting)."""
    await pool.open()
    for attempt in range(1, attempts + 1):
        try:
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
            return
        except (psycopg.OperationalError, PoolTimeout) as exc:
            if attempt == attempts:
                raise
            logger.warning("database not reachable yet ({}); retrying", exc)
            await asyncio.sleep(1)


class DatabaseNotUsable(RuntimeError):
    """The database exists but cannot hold the gallery as it is (said once, at start)."""


async def _check_encoding(conn: psycopg.AsyncConnection) -> None:
    """Original names are any Unicode text. A SQL_ASCII database hands them back as bytes
    and a LATIN1 one refuses most of them, so uploads would fail one by one long after the
    start: refuse such a database now, saying how to make a right one."""
    cur = await conn.execute("SHOW server_encoding")
    row = await cur.fetchone()
    encoding = row[0] if row else "unknown"
    if isinstance(encoding, bytes):  # SQL_ASCII answers in bytes
        encoding = encoding.decode("ascii", "replace")
    if encoding != "UTF8":
        raise DatabaseNotUsable(
            f"the database {conn.info.dbname!r} uses the encoding {encoding}; ImageHosting "
            "needs UTF8 (create it with: CREATE DATABASE <name> ENCODING 'UTF8' "
            "TEMPLATE template0)"
        )


def _read_migrations() -> list[tuple[str, str]]:
    return [(path.stem, path.read_text()) for path in sorted(MIGRATIONS_DIR.glob("*.sql"))]


async def migrate(pool: AsyncConnectionPool) -> list[str]:
    """Apply every migration not yet applied; safe when several processes start at once.
    Refuses a database that is not UTF8 (see `_check_encoding`)."""
    migrations = await asyncio.to_thread(_read_migrations)
    applied_now: list[str] = []
    async with pool.connection() as conn, conn.transaction():
        await _check_encoding(conn)
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cur.fetchall()}
        for version, sql in migrations:
            if version in done:
                continue
            await conn.execute(sql.encode())
            await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
    if applied_now:
        logger.info("applied migrations: {}", ", ".join(applied_now))
    return applied_now
