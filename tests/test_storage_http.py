"""Stored files going wrong behind the app's back, through nginx, once per store (local
folder, S3): a missing image still lets the gallery render, its link is a 404, and
`check --repair` settles it; lost thumbnails come back with `thumbnails`. And for S3, a
store that goes down: a clear 503 that stores nothing, then uploads work again once it is
back, without restarting anything."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from scripts.launch import child_pids, command_line, running_stack
from scripts.seaweed import SeaweedFS
from server.formats import THUMB_SIDES, thumb_name
from tests.images import make_image
from tests.support import (
    BOTH_STORES,
    REPO,
    Browser,
    PostgresServer,
    Stack,
    files_in,
    stored_files,
)


def run_server_command(site: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=REPO,
        env=os.environ | {"LOG_LEVEL": "INFO"} | site.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@BOTH_STORES
def test_a_missing_image_is_a_404_the_gallery_survives_and_check_repair_settles_it(
    site: Stack, browser: Browser
) -> None:
    kept = browser.upload("kept.png", make_image()).json()
    lost = browser.upload("lost.png", make_image(color="navy")).json()
    for image in (kept, lost):
        browser.wait_for_thumbnails(image["id"])  # made after the answer
    site.lose(lost["filename"])

    gallery = browser.get("/images/")
    assert gallery.status_code == 200
    assert f'href="/view/{lost["id"]}"' in gallery.text
    assert httpx.get(lost["url"]).status_code == 404
    assert httpx.get(kept["url"]).status_code == 200

    found = run_server_command(site, "check")
    assert found.returncode == 1, found.stderr
    assert f"({lost['filename']})" in found.stderr

    repaired = run_server_command(site, "check", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert site.rows() == 1
    assert site.files() == stored_files(kept["filename"])  # the lost one's thumbnails went too
    assert browser.get(f"/view/{lost['id']}").status_code == 404


@BOTH_STORES
def test_lost_thumbnails_are_made_again_by_the_thumbnails_command(
    site: Stack, browser: Browser
) -> None:
    uploaded = browser.upload("photo.png", make_image(size=(900, 600))).json()
    image = browser.wait_for_thumbnails(uploaded["id"])
    thumbnails = [thumb_name(image["filename"], side) for side in THUMB_SIDES]
    for name in thumbnails:
        site.lose(name)
    assert site.files() == {image["filename"]}

    done = run_server_command(site, "thumbnails")
    assert done.returncode == 0, done.stderr
    assert site.files() == stored_files(image["filename"])
    served = httpx.get(image["thumb_url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
    assert served.content == site.read(thumbnails[0])


@pytest.mark.parametrize("site", ["s3"], indirect=True)
def test_a_store_that_is_down_is_a_clear_503_and_back_up_it_just_works(
    site: Stack, browser: Browser, seaweedfs: SeaweedFS
) -> None:
    seen = browser.upload("seen.png", make_image()).json()
    unseen = browser.upload("unseen.png", make_image(color="navy")).json()
    for image in (seen, unseen):
        browser.wait_for_thumbnails(image["id"])
    seen_bytes = httpx.get(seen["url"]).content  # now in this host's nginx cache
    seaweedfs.stop()
    try:
        refused = browser.upload("while-down.png", make_image(color="olive"))
        assert refused.status_code == 503
        assert refused.json() == {
            "error": "The service is temporarily unavailable. Please try again in a moment."
        }
        assert site.rows() == 2
        assert browser.get("/images/").status_code == 200  # the gallery still renders
        assert httpx.get(seen["url"]).content == seen_bytes  # served from the cache
        not_cached = httpx.get(unseen["url"], headers={"Accept": "application/json"})
        assert not_cached.status_code == 502 and "error" in not_cached.json()
        # A delete still happens: the row goes now, the objects once the store is back
        # (`check --repair` removes objects with no row).
        assert browser.remove(seen["id"]).status_code == 204
        assert site.rows() == 1
    finally:
        seaweedfs.start()
    # Nothing half-written survived.
    assert site.files() == stored_files(seen["filename"]) | stored_files(unseen["filename"])

    stored = browser.upload("after.png", make_image(color="olive"))
    assert stored.status_code == 201, stored.text
    browser.wait_for_thumbnails(stored.json()["id"])
    assert stored_files(stored.json()["filename"]) <= site.files()
    assert httpx.get(stored.json()["url"]).status_code == 200
    assert httpx.get(unseen["url"]).status_code == 200


def test_local_stack_with_seaweedfs_keeps_the_images_in_its_own_bucket(
    postgres: PostgresServer,
) -> None:
    """`scripts/local-stack --seaweedfs`: a throwaway store under the data dir, the backends
    and nginx on it, and nothing of it left once the stack stops."""
    with running_stack(
        workers=1, database_url=postgres.create_database(), extra_args=("--seaweedfs",)
    ) as stack:
        assert (stack.data_dir / "seaweedfs" / "s3.json").is_file()
        assert "STORAGE=s3" in (stack.data_dir / "stack.env").read_text()
        with Browser(stack.url) as browser:
            image = browser.upload("tried.png", make_image()).json()
        served = httpx.get(image["url"])
        assert served.status_code == 200 and served.headers["x-cache-status"] == "MISS"
        assert files_in(stack.images_dir) == []
        weed = [pid for pid in child_pids(stack.process.pid) if b"weed" in command_line(pid)]
        assert len(weed) == 1
        # Its gRPC servers' unix sockets, which weed puts in /tmp whatever it is told.
        ports = re.findall(rb"-(\w+)\.port\.grpc=(\d+)", command_line(weed[0]))
        sockets = [Path(f"/tmp/seaweedfs-{n.decode()}-grpc-{p.decode()}.sock") for n, p in ports]
        assert len(sockets) == 4 and any(path.exists() for path in sockets)
    assert not Path(f"/proc/{weed[0]}").exists()
    assert not [path for path in sockets if path.exists()]
