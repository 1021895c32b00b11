"""server.workers: Pillow work runs in other, low-priority processes; a worker that dies is
replaced, and the next upload succeeds."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from server.errors import ServiceUnavailable, UploadTooLarge
from server.gallery import Gallery
from server.models import IncomingFile
from server.storage import LocalImageStore
from server.workers import NICENESS, ImageWorkers
from tests.images import make_photo
from tests.support import files_in, stored_files

OWNER = "c" * 64


def where_am_i(tag: str) -> tuple[str, int, int]:
    return tag, os.getpid(), os.getpriority(os.PRIO_PROCESS, 0)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def too_large() -> None:
    raise UploadTooLarge("The file is {size} MB.", size="9")


async def test_work_runs_in_niced_processes_and_the_parse_on_niced_threads() -> None:
    workers = ImageWorkers(processes=2, threads=1)
    try:
        pids = await workers.start()
        tag, pid, niceness = await workers.run(where_am_i, "x")
        thread_niceness = await workers.run_in_thread(
            lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        )
    finally:
        workers.shutdown()
    assert tag == "x"
    assert len(set(pids)) == 2 and pid in pids and os.getpid() not in pids
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert niceness == min(19, mine + NICENESS)
    assert thread_niceness == min(19, mine + NICENESS)


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
        image = await gallery.upload([IncomingFile("a.jpg", make_photo(800, 600))], OWNER)
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
