"""server.repository at scale: the O(1) total stays exact under concurrent writers, and the
index-friendly page queries return exactly what the naive OFFSET query returns."""

from __future__ import annotations

import asyncio
import random

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from server import repository
from tests.images import new_row


async def true_count(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM images")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def bulk_insert(pool: AsyncConnectionPool, first: int, count: int) -> None:
    """Rows straight in SQL (one statement: the statement-level trigger sees them all)."""
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO images (filename, original_name, size, width, height, format,"
            " owner_hash) SELECT lpad(to_hex(n), 32, '0') || '.png', 'seed ' || n, 100, 10,"
            " 10, 'PNG', repeat('a', 64) FROM generate_series(%s::int, %s::int) AS n",
            (first, first + count - 1),
        )


async def test_the_total_stays_exact_under_concurrent_inserts_and_deletes(
    pool: AsyncConnectionPool, unit_database_url: str
) -> None:
    await bulk_insert(pool, 1_000_000, 200)
    assert await repository.count_images(pool) == 200

    async def inserter(start: int) -> None:
        for n in range(start, start + 25):
            await repository.insert_image(pool, new_row(n))

    async def deleter(ids: list[int]) -> None:
        for image_id in ids:
            await repository.delete_image(pool, image_id)

    async def bulk_writer() -> None:
        # Another client, outside the app: multi-row statements in their own transactions.
        async with await psycopg.AsyncConnection.connect(unit_database_url) as conn:
            for k in range(5):
                await conn.execute(
                    "DELETE FROM images WHERE id IN (SELECT id FROM images"
                    " WHERE original_name LIKE 'seed %%' ORDER BY id LIMIT 7 OFFSET %s)",
                    (k * 20,),
                )
                await conn.commit()

    ids = list(range(1, 201))
    random.Random(6).shuffle(ids)
    await asyncio.gather(
        *(inserter(s) for s in (1, 101, 201, 301)),
        *(deleter(ids[k * 20 : k * 20 + 20]) for k in range(3)),
        bulk_writer(),
    )
    assert await repository.count_images(pool) == await true_count(pool)
    total, images = await repository.list_page(pool, 12, 0)
    assert total == await true_count(pool)

    # TRUNCATE (the test fixtures use it) resets the count too.
    async with pool.connection() as conn:
        await conn.execute("TRUNCATE images")
    assert await repository.count_images(pool) == 0


async def test_a_failed_insert_leaves_the_total_alone(pool: AsyncConnectionPool) -> None:
    await repository.insert_image(pool, new_row(1))
    with pytest.raises(psycopg.errors.UniqueViolation):
        await repository.insert_image(pool, new_row(1))
    assert await repository.count_images(pool) == 1


async def naive_page(pool: AsyncConnectionPool, limit: int, offset: int) -> list[int]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id FROM images ORDER BY id DESC LIMIT %s OFFSET %s", (limit, offset)
        )
        return [row[0] for row in await cur.fetchall()]


@pytest.mark.parametrize("rows", [0, 1, 11, 12, 13, 300, 301])
async def test_every_page_matches_the_naive_query(pool: AsyncConnectionPool, rows: int) -> None:
    await bulk_insert(pool, 1, rows + 40)
    # Holes in the ids, as deletes leave them.
    async with pool.connection() as conn:
        await conn.execute("DELETE FROM images WHERE id %% 9 = 0 OR id > %s", (rows + 40,))
        cur = await conn.execute("SELECT count(*) FROM images")
        row = await cur.fetchone()
        assert row is not None
        existing = int(row[0])
        if existing > rows:
            await conn.execute(
                "DELETE FROM images WHERE id IN (SELECT id FROM images ORDER BY id LIMIT %s)",
                (existing - rows,),
            )
    assert await repository.count_images(pool) == rows
    for per_page in (12, 7):
        pages = max(1, -(-rows // per_page))
        for page in range(1, pages + 2):  # one past the last: empty
            offset = (page - 1) * per_page
            total, images = await repository.list_page(pool, per_page, offset)
            assert total == rows
            assert [i.id for i in images] == await naive_page(pool, per_page, offset), (
                per_page,
                page,
            )


async def scanned_index_entries(pool: AsyncConnectionPool, offset: int) -> int:
    """How many primary-key entries the page query walks for this offset (EXPLAIN ANALYZE)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {repository._PAGE}", {"limit": 12, "offset": offset}
        )
        row = await cur.fetchone()
        assert row is not None

    def walk(node: dict) -> int:
        own = node.get("Actual Rows", 0) * node.get("Actual Loops", 0)
        scanned = own if node["Node Type"] == "Index Only Scan" else 0
        return scanned + sum(walk(child) for child in node.get("Plans", []))

    return walk(row[0][0]["Plan"])


async def test_far_pages_are_read_from_the_oldest_end(pool: AsyncConnectionPool) -> None:
    await bulk_insert(pool, 1, 3000)
    async with pool.connection() as conn:
        await conn.execute("VACUUM ANALYZE images")
    assert await scanned_index_entries(pool, 0) == 12
    assert await scanned_index_entries(pool, 12 * 100) == 12 * 101
    assert await scanned_index_entries(pool, 2988) == 12  # the last page
    assert await scanned_index_entries(pool, 2976) == 24
    assert await scanned_index_entries(pool, 1500) <= 1500  # the middle: the worst case


async def test_set_thumbnail_and_walking_every_row(pool: AsyncConnectionPool) -> None:
    images = [(await repository.insert_image(pool, new_row(n))).image for n in range(5)]
    assert images[0].has_thumbnail is False
    updated = await repository.set_thumbnail(pool, images[1].id, 320, 240)
    got = await repository.get_image(pool, images[1].id)
    assert got is not None and (got.thumb_width, got.thumb_height) == (320, 240)
    assert updated == got
    await repository.delete_image(pool, images[2].id)
    assert await repository.set_thumbnail(pool, images[2].id, 320, 240) is None
    walked = await repository.images_after(pool, 0, 2)
    walked += await repository.images_after(pool, walked[-1].id, 10)
    assert [i.id for i in walked] == [images[n].id for n in (0, 1, 3, 4)]


def test_the_column_list_follows_the_image_fields() -> None:
    """list_page builds Image positionally from _IMAGE_COLUMNS."""
    from dataclasses import fields

    from server.models import Image

    columns = [c.strip() for c in repository._IMAGE_COLUMNS.split(",")]
    assert columns == [f.name for f in fields(Image)]
