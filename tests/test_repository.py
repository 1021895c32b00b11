"""server.repository against real PostgreSQL: rows, order, and NOTIFY only on commit."""

from __future__ import annotations

import asyncio

import psycopg
from psycopg_pool import AsyncConnectionPool

from server import repository
from server.db import migrate
from server.models import ImageEvent
from tests.images import new_row


async def test_insert_get_list_count_delete(pool: AsyncConnectionPool) -> None:
    images = [(await repository.insert_image(pool, new_row(n))).image for n in range(15)]
    assert await repository.count_images(pool) == 15
    assert await repository.get_image(pool, images[3].id) == images[3]
    total, page = await repository.list_page(pool, 12, 0)
    assert total == 15
    assert [i.id for i in page] == [i.id for i in reversed(images)][:12]
    assert [i.id for i in (await repository.list_page(pool, 12, 12))[1]] == [
        images[2].id,
        images[1].id,
        images[0].id,
    ]
    assert images[0].uploaded_at.tzinfo is not None
    newer, older = await repository.neighbours(pool, images[5].id)
    assert (newer, older) == (images[6].id, images[4].id)
    deleted = await repository.delete_image(pool, images[3].id)
    assert deleted is not None and deleted.image == images[3]
    assert await repository.delete_image(pool, images[3].id) is None
    assert await repository.get_image(pool, images[3].id) is None
    assert await repository.count_images(pool) == 14


async def test_writes_notify_listeners_with_small_payloads(
    pool: AsyncConnectionPool, unit_database_url: str
) -> None:
    async with await psycopg.AsyncConnection.connect(unit_database_url, autocommit=True) as conn:
        await conn.execute(f"LISTEN {repository.EVENTS_CHANNEL}")
        before = await repository.current_version(pool)
        inserted = await repository.insert_image(pool, new_row(1))
        image = inserted.image
        deleted = await repository.delete_image(pool, image.id)
        assert deleted is not None
        payloads = []
        async with asyncio.timeout(5):
            async for notify in conn.notifies(stop_after=2):
                payloads.append(notify.payload)
    created_event, deleted_event = (ImageEvent.from_json(p) for p in payloads)
    # Each write has the next version, in commit order (what the page caches rely on).
    v = before + 1
    assert created_event == ImageEvent("image.created", total=1, image=image, version=v)
    assert deleted_event == ImageEvent("image.deleted", total=0, image_id=image.id, version=v + 1)
    # Each write says its own version (no second round trip to learn it).
    assert (inserted.version, deleted.version) == (v, v + 1)
    assert await repository.current_version(pool) == v + 1
    assert all(len(p.encode()) < 8000 for p in payloads)


async def test_concurrent_writes_get_their_versions_in_commit_order(
    pool: AsyncConnectionPool, unit_database_url: str
) -> None:
    """Each write is one statement on its own connection: four at once still get consecutive
    versions, announced in version order, each with the total right after it."""
    async with await psycopg.AsyncConnection.connect(unit_database_url, autocommit=True) as conn:
        await conn.execute(f"LISTEN {repository.EVENTS_CHANNEL}")
        before = await repository.current_version(pool)
        inserted = await asyncio.gather(
            *(repository.insert_image(pool, new_row(100 + n)) for n in range(12))
        )
        deleted = await asyncio.gather(
            *(repository.delete_image(pool, w.image.id) for w in inserted[:6])
        )
        async with asyncio.timeout(5):
            events = [ImageEvent.from_json(n.payload) async for n in conn.notifies(stop_after=18)]
    versions = [event.version for event in events]
    assert versions == list(range(before + 1, before + 19))
    assert all(w is not None for w in deleted)
    assert sorted(w.version for w in [*inserted, *deleted] if w is not None) == versions
    total = 0
    for event in events:
        total += 1 if event.kind == "image.created" else -1
        assert event.total == total
    assert await repository.count_images(pool) == 6


async def test_no_event_when_the_insert_fails(
    pool: AsyncConnectionPool, unit_database_url: str
) -> None:
    await repository.insert_image(pool, new_row(7))
    async with await psycopg.AsyncConnection.connect(unit_database_url, autocommit=True) as conn:
        await conn.execute(f"LISTEN {repository.EVENTS_CHANNEL}")
        try:
            await repository.insert_image(pool, new_row(7))  # same filename: unique violation
        except psycopg.errors.UniqueViolation:
            pass
        else:
            raise AssertionError("the duplicate insert should fail")
        got = [n async for n in conn.notifies(timeout=0.5)]
    assert got == []
    assert await repository.count_images(pool) == 1


async def test_the_shared_secret_is_generated_once(pool: AsyncConnectionPool) -> None:
    first = await repository.shared_secret(pool, "test-secret")
    assert len(first) >= 48
    assert await repository.shared_secret(pool, "test-secret") == first


async def test_migrations_are_idempotent(pool: AsyncConnectionPool) -> None:
    assert await migrate(pool) == []
    await asyncio.gather(migrate(pool), migrate(pool))
