"""server.workers: Pillow work runs in other, low-priority processes; a worker that dies is
replaced, and the next upload succeeds."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

import pytest

from scripts.launch import child_pids, command_line
from server.errors import ServiceUnavailable, UploadTooLarge
from server.gallery import Gallery
from server.models import IncomingFile
from server.storage import LocalImageStore
from server.workers import NICENESS, ImageWorkers
from tests.images import make_photo
from tests.support import (
    files_in,
    start_backend,
    stop_backend,
    stored_files,
    wait_until_healthy,
)

OWNER = "c" * 64


def where_am_i(tag: str) -> tuple[str, int, int]:
    return tag, os.getpid(), os.getpriority(os.PRIO_PROCESS, 0)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def too_large() -> None:
    raise UploadTooLarge("The file is {size} MB.", size="9")


async def test_work_runs_in_niced_processes() -> None:
    workers = ImageWorkers(processes=2)
    try:
        pids = await workers.start()
        tag, pid, niceness = await workers.run(where_am_i, "x")
    finally:
        workers.shutdown()
    assert tag == "x"
    assert os.getpid() not in pids and pid != os.getpid()
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert niceness == min(19, mine + NICENESS)


async def test_domain_errors_cross_the_process_boundary_whole() -> None:
    workers = ImageWorkers(processes=1)
    try:
        with pytest.raises(UploadTooLarge) as raised:
            await workers.run(too_large)
    finally:
        workers.shutdown()
    # The template and its fields, not only the English text: the handler translates it.
    assert (raised.value.template, raised.value.params) == ("The file is {size} MB.", {"size": "9"})


async def test_a_killed_worker_is_replaced_and_the_next_upload_succeeds(
    gallery: Gallery, store: LocalImageStore
) -> None:
    workers = ImageWorkers(processes=2)
    gallery._workers = workers  # this test's own pool: it kills one of its processes
    try:
        pids = await workers.start()
        os.kill(pids[0], signal.SIGKILL)
        image = (await gallery.upload([IncomingFile("a.jpg", make_photo(800, 600))], OWNER)).image
        await gallery.settle()
        assert files_in(store.root) == sorted(stored_files(image.filename))
        assert (await gallery.get(image.id)).has_thumbnail
        # A job that kills its worker every time fails as "try again", once the new pool
        # broke too; the pool after that works.
        with pytest.raises(ServiceUnavailable):
            await workers.run(die)
        _tag, pid, _niceness = await workers.run(where_am_i, "after")
        assert pid not in pids
    finally:
        workers.shutdown()


async def test_workers_die_with_a_backend_killed_with_sigkill(unit_database_url: str) -> None:
    """Nothing is left behind: a killed backend's image workers do not outlive it."""
    backend, url = await start_backend(unit_database_url, Path(tempfile.mkdtemp()), log=False)
    try:
        await wait_until_healthy(url)
        workers = child_pids(backend.pid)
        assert len(workers) >= 2  # the pool (and multiprocessing's resource tracker)
    finally:
        await stop_backend(backend)  # SIGKILL
    async with asyncio.timeout(10):
        while alive := [
            pid for pid in workers if Path(f"/proc/{pid}").exists() and not zombie(pid)
        ]:
            await asyncio.sleep(0.05)
    assert alive == []


@pytest.mark.parametrize("setting", ["", "1"])
async def test_image_workers_sets_the_pool_size(unit_database_url: str, setting: str) -> None:
    """IMAGE_WORKERS processes per backend, or one per core when it is empty."""
    backend, url = await start_backend(
        unit_database_url, Path(tempfile.mkdtemp()), log=False, env={"IMAGE_WORKERS": setting}
    )
    try:
        await wait_until_healthy(url)
        children = [command_line(pid) for pid in child_pids(backend.pid)]
    finally:
        await stop_backend(backend)
    pool = [line for line in children if b"spawn_main" in line]
    assert len(pool) == (int(setting) if setting else os.cpu_count())


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
