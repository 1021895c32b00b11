"""All SQL lives here: parameterised queries as named async functions returning dataclasses.

Writes announce themselves with `pg_notify` inside their own transaction, so an event
exists exactly when the change committed.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from server.errors import ServiceUnavailable
from server.models import Image, NewImage, Written

EVENTS_CHANNEL = "image_events"

_IMAGE_COLUMNS = (
    "id, filename, original_name, size, width, height, format, owner_hash, uploaded_at,"
    " thumb_width, thumb_height"
)


@asynccontextmanager
async def _connection(pool: AsyncConnectionPool) -> AsyncIterator[AsyncConnection]:
    """A pooled connection; a database that is down or overloaded becomes ServiceUnavailable."""
    try:
        async with pool.connection() as conn:
            yield conn
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise ServiceUnavailable() from exc


async def _count(conn: AsyncConnection) -> int:
    """O(1): the triggers of migration 002 keep the count in `image_total`."""
    cur = await conn.execute("SELECT total FROM image_total")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


# Each write is one statement, so one round trip (the pool's connections are autocommit, so
# it is its own transaction): the row change, the gallery version bumped (migration 004),
# and the event announced with `pg_notify`, which PostgreSQL delivers only if it commits.
# The version lives in image_total's one row, whose lock (taken after the image row's, as
# the total's triggers take it) keeps versions in commit order. PostgreSQL writes the
# event's payload (what ImageEvent.from_json reads): the image object is the returned row
# (_IMAGE_COLUMNS are Image's fields), the total the one the total's trigger then writes.
_INSERT = f"""
WITH new AS (
    INSERT INTO images (filename, original_name, size, width, height, format, owner_hash,
                        thumb_width, thumb_height)
    VALUES (%(filename)s, %(original_name)s, %(size)s, %(width)s, %(height)s, %(format)s,
            %(owner_hash)s, %(thumb_width)s, %(thumb_height)s)
    RETURNING {_IMAGE_COLUMNS}
), written AS (
    UPDATE image_total SET version = version + 1 RETURNING version, total + 1 AS total
)
SELECT written.version,
       pg_notify(%(channel)s, json_build_object('type', 'image.created', 'total', written.total,
                 'image', to_json(new), 'version', written.version)::text),
       new.*
FROM new, written
"""

_DELETE = f"""
WITH gone AS (
    DELETE FROM images WHERE id = %(id)s RETURNING {_IMAGE_COLUMNS}
), written AS (
    UPDATE image_total SET version = version + 1 WHERE EXISTS (SELECT FROM gone)
    RETURNING version, total - 1 AS total
)
SELECT written.version,
       pg_notify(%(channel)s, json_build_object('type', 'image.deleted', 'total', written.total,
                 'id', gone.id, 'version', written.version)::text),
       gone.*
FROM gone, written
"""

_SET_THUMBNAIL = f"""
WITH changed AS (
    UPDATE images SET thumb_width = %(width)s, thumb_height = %(height)s WHERE id = %(id)s
    RETURNING {_IMAGE_COLUMNS}
), written AS (
    UPDATE image_total SET version = version + 1 WHERE EXISTS (SELECT FROM changed)
    RETURNING version
)
SELECT written.version,
       pg_notify(%(channel)s, json_build_object('type', 'image.updated', 'total', NULL,
                 'image', to_json(changed), 'version', written.version)::text),
       changed.*
FROM changed, written
"""


def _written(cursor: Any) -> Callable[[Sequence[Any]], Written]:
    def make(values: Sequence[Any]) -> Written:
        # The version, pg_notify's (empty) result, then Image's fields in declared order.
        return Written(Image(*values[2:]), int(values[0]))

    return make


async def _write(pool: AsyncConnectionPool, statement: str, **params: Any) -> Written | None:
    async with _connection(pool) as conn:
        cur = conn.cursor(row_factory=_written)
        await cur.execute(statement, {"channel": EVENTS_CHANNEL, **params})
        return await cur.fetchone()


async def current_version(pool: AsyncConnectionPool) -> int:
    """The version of the last committed write."""
    async with _connection(pool) as conn:
        cur = await conn.execute("SELECT version FROM image_total")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def insert_image(pool: AsyncConnectionPool, new: NewImage) -> Written:
    """Record an upload, announced as `image.created`; with the write's version."""
    written = await _write(pool, _INSERT, **asdict(new))
    assert written is not None
    return written


async def delete_image(pool: AsyncConnectionPool, image_id: int) -> Written | None:
    """Delete the row, announced as `image.deleted`; returns what was deleted with the
    write's version, or None when it was already gone."""
    return await _write(pool, _DELETE, id=image_id)


async def get_image(pool: AsyncConnectionPool, image_id: int) -> Image | None:
    async with _connection(pool) as conn:
        cur = conn.cursor(row_factory=class_row(Image))
        await cur.execute(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = %s", (image_id,))
        return await cur.fetchone()


async def count_images(pool: AsyncConnectionPool) -> int:
    async with _connection(pool) as conn:
        return await _count(conn)


# A page of the gallery, newest first (ids only grow), with the total, in one statement (one
# round trip, one snapshot: the page always agrees with the total). Only 12 ids are looked
# up in the primary key index (an index-only scan that skips `offset` index entries without
# touching the table), then just those rows are read. Pages in the older half are counted
# from the oldest end instead, so no page walks more than half the index and the last page
# is as cheap as the first; the branch whose one-time filter is false never runs.
_PAGE = f"""
WITH ids AS (
    (SELECT id FROM images
     WHERE %(offset)s < (SELECT total FROM image_total) / 2.0
     ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s)
    UNION ALL
    (SELECT id FROM images
     WHERE %(offset)s >= (SELECT total FROM image_total) / 2.0
     ORDER BY id ASC
     LIMIT (SELECT least(%(limit)s, greatest(0, total - %(offset)s)) FROM image_total)
     OFFSET (SELECT greatest(0, total - %(offset)s - %(limit)s) FROM image_total))
)
SELECT (SELECT total FROM image_total) AS total, {_IMAGE_COLUMNS}
FROM images WHERE id IN (SELECT id FROM ids) ORDER BY id DESC
"""


def _image_with_total(cursor: Any) -> Callable[[Sequence[Any]], tuple[int, Image]]:
    def make(values: Sequence[Any]) -> tuple[int, Image]:
        # _IMAGE_COLUMNS lists Image's fields in their declared order.
        return int(values[0]), Image(*values[1:])

    return make


async def list_page(pool: AsyncConnectionPool, limit: int, offset: int) -> tuple[int, list[Image]]:
    """(total, rows offset..offset+limit-1 newest first), from one snapshot."""
    async with _connection(pool) as conn:
        cur = conn.cursor(row_factory=_image_with_total)
        await cur.execute(_PAGE, {"limit": limit, "offset": offset})
        rows = await cur.fetchall()
        if not rows:  # an empty gallery, or a page past the last one
            return await _count(conn), []
        return rows[0][0], [image for _total, image in rows]


async def set_thumbnail(
    pool: AsyncConnectionPool, image_id: int, width: int, height: int
) -> Image | None:
    """Record that an image's thumbnails exist, announced as `image.updated`; None when the
    image is gone. (The row lock orders this against a concurrent delete.)"""
    written = await _write(pool, _SET_THUMBNAIL, id=image_id, width=width, height=height)
    return None if written is None else written.image


async def images_after(pool: AsyncConnectionPool, after_id: int, limit: int) -> list[Image]:
    """Up to `limit` images with ids above `after_id`, oldest first (to walk every row)."""
    async with _connection(pool) as conn:
        cur = conn.cursor(row_factory=class_row(Image))
        await cur.execute(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id > %s ORDER BY id LIMIT %s",
            (after_id, limit),
        )
        return await cur.fetchall()


async def neighbours(pool: AsyncConnectionPool, image_id: int) -> tuple[int | None, int | None]:
    """(newer id, older id) around an image, for previous/next links in the view."""
    async with _connection(pool) as conn:
        cur = await conn.execute(
            "SELECT (SELECT min(id) FROM images WHERE id > %s),"
            " (SELECT max(id) FROM images WHERE id < %s)",
            (image_id, image_id),
        )
        row = await cur.fetchone()
        assert row is not None
        return row[0], row[1]


async def filename_id_batches(
    pool: AsyncConnectionPool, size: int
) -> AsyncIterator[list[tuple[str, int]]]:
    """Every row's (filename, id), `size` at a time, all from one snapshot. A server-side
    cursor keeps one batch in memory however large the gallery; close the generator (e.g.
    `contextlib.aclosing`) when stopping early."""
    async with (
        _connection(pool) as conn,
        conn.transaction(),
        conn.cursor(name="filename_id_batches") as cur,
    ):
        await cur.execute("SELECT filename, id FROM images")
        while batch := await cur.fetchmany(size):
            yield [(str(row[0]), int(row[1])) for row in batch]


async def recorded_filenames(pool: AsyncConnectionPool, filenames: list[str]) -> set[str]:
    """Those of `filenames` that have a row (one lookup each in the unique index)."""
    async with _connection(pool) as conn:
        cur = await conn.execute(
            "SELECT filename FROM images WHERE filename = ANY(%s)", (filenames,)
        )
        return {row[0] for row in await cur.fetchall()}


async def shared_secret(pool: AsyncConnectionPool, name: str) -> str:
    """A random secret generated once and shared by every backend process."""
    async with _connection(pool) as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO app_secrets (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
            (name, secrets.token_urlsafe(48)),
        )
        cur = await conn.execute("SELECT value FROM app_secrets WHERE name = %s", (name,))
        row = await cur.fetchone()
        assert row is not None
        return str(row[0])


async def insert_admin_session(
    pool: AsyncConnectionPool, id_hash: str, password_tag: str, lifetime_seconds: int
) -> None:
    """Record a new admin session; expired ones are swept out on the way (logins are rare)."""
    async with _connection(pool) as conn, conn.transaction():
        await conn.execute("DELETE FROM admin_sessions WHERE expires_at < now()")
        await conn.execute(
            "INSERT INTO admin_sessions (id_hash, password_tag, expires_at)"
            " VALUES (%s, %s, now() + make_interval(secs => %s))",
            (id_hash, password_tag, lifetime_seconds),
        )


async def admin_session_exists(pool: AsyncConnectionPool, id_hash: str, password_tag: str) -> bool:
    """Is this session open, unexpired, and opened with the current password?"""
    async with _connection(pool) as conn:
        cur = await conn.execute(
            "SELECT 1 FROM admin_sessions"
            " WHERE id_hash = %s AND password_tag = %s AND expires_at > now()",
            (id_hash, password_tag),
        )
        return await cur.fetchone() is not None


async def delete_admin_session(pool: AsyncConnectionPool, id_hash: str) -> None:
    async with _connection(pool) as conn:
        await conn.execute("DELETE FROM admin_sessions WHERE id_hash = %s", (id_hash,))


async def listen_for_events(conn: AsyncConnection) -> None:
    """Subscribe a dedicated autocommit connection to the events channel."""
    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")


async def ping_listener(conn: AsyncConnection) -> None:
    """A round trip on the LISTEN connection, which the pool does not look after."""
    await conn.execute("SELECT 1")


async def ping(pool: AsyncConnectionPool) -> None:
    async with _connection(pool) as conn:
        await conn.execute("SELECT 1")
