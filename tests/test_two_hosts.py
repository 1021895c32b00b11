"""Two hosts, one site: two independent stacks — each its own nginx, two backends and data
dir, no shared folder — on one PostgreSQL and one bucket. What one host stores, the other
serves, announces and deletes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect

from scripts.launch import running_stack
from scripts.seaweed import SeaweedFS
from server.formats import STORED_NAME_RE, THUMB_NAME_RE, thumb_name
from tests.images import make_photo
from tests.support import TWO_HOSTS_BUCKET, Browser, Bucket, PostgresServer, Stack
from tests.test_live import receive, ws_url


@pytest.fixture(scope="module")
def two_hosts(postgres: PostgresServer, seaweedfs: SeaweedFS) -> Iterator[tuple[Stack, Stack]]:
    database_url = postgres.create_database()
    env = seaweedfs.app_env() | {"S3_BUCKET": TWO_HOSTS_BUCKET}
    bucket = Bucket(seaweedfs, TWO_HOSTS_BUCKET)
    with (
        running_stack(workers=2, database_url=database_url, env=env) as host_a,
        running_stack(workers=2, database_url=database_url, env=env) as host_b,
    ):
        for host in (host_a, host_b):  # both answer through nginx before the test starts
            try:
                answered = httpx.get(f"{host.url}/healthz", timeout=30).status_code
            except httpx.TransportError as exc:
                answered = exc  # type: ignore[assignment]
            assert answered == 200, f"{host.url}: {answered}\n" + "".join(host.log[-40:])
        yield (
            Stack(host_a, database_url, bucket, env),
            Stack(host_b, database_url, bucket, env),
        )


def image_files_under(stack: Stack) -> list[str]:
    """Files anywhere in the host's data dir named like a stored image or thumbnail."""
    return [
        str(path)
        for path in stack.running.data_dir.rglob("*")
        if path.is_file()
        and (STORED_NAME_RE.fullmatch(path.name) or THUMB_NAME_RE.fullmatch(path.name))
    ]


async def test_upload_on_one_host_is_served_announced_and_deleted_through_the_other(
    two_hosts: tuple[Stack, Stack],
) -> None:
    host_a, host_b = two_hosts
    assert host_a.bucket is not None
    with Browser(host_a.url) as on_a, Browser(host_b.url) as on_b:
        on_a.xsrf  # noqa: B018  (the owner and XSRF cookies, from host A)
        async with (
            connect(ws_url(host_a), origin=host_a.url) as socket_a,
            connect(ws_url(host_b), origin=host_b.url) as socket_b,
        ):
            await receive(socket_a, "hello")
            await receive(socket_b, "hello")

            response = await asyncio.to_thread(on_a.upload, "two-hosts.jpg", make_photo(800, 600))
            assert response.status_code == 201, response.text
            image = response.json()
            created = await receive(socket_b, "image.created")  # within a second
            assert created["image"]["id"] == image["id"]

            await asyncio.to_thread(on_a.wait_for_thumbnails, image["id"])  # after the answer
            name = image["filename"]
            stored = host_a.bucket.get(name)
            from_b = httpx.get(f"{host_b.url}/images/{name}")
            assert from_b.status_code == 200
            assert from_b.headers["content-type"] == "image/jpeg"
            assert from_b.content == stored == httpx.get(image["url"]).content
            thumb = thumb_name(name, 320)
            thumb_from_b = httpx.get(f"{host_b.url}/images/{thumb}")
            assert thumb_from_b.status_code == 200
            assert thumb_from_b.content == host_a.bucket.get(thumb)

            # The uploader's own cookies, presented to the other host, may delete it.
            on_b.cookies.update(on_a.cookies)
            assert (await asyncio.to_thread(on_b.remove, image["id"])).status_code == 204
            deleted = await receive(socket_a, "image.deleted")
            assert deleted["id"] == image["id"]

    assert host_a.bucket.keys() == set()
    assert host_a.rows() == 0
    assert image_files_under(host_a) == [] and image_files_under(host_b) == []
