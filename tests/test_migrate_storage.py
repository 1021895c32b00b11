"""`python -m server migrate-storage --to s3|local` against a real SeaweedFS: every image and
thumbnail copied with its bytes, a second run copies nothing, and the check agrees after."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

from scripts.seaweed import SeaweedFS
from server.gallery import Gallery
from server.models import IncomingFile
from tests.images import make_image
from tests.support import REPO, Bucket, files_in, stored_files


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=REPO,
        env=os.environ | {"LOG_LEVEL": "INFO"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_migrating_to_s3_and_back_copies_everything_once(
    gallery: Gallery, seaweedfs: SeaweedFS, unit_database_url: str, tmp_path: Path
) -> None:
    images = [
        (
            await gallery.upload([IncomingFile(f"{color}.png", make_image(color=color))], "a" * 64)
        ).image
        for color in ("red", "green", "blue")
    ]
    await gallery.settle()  # the thumbnails are made after each upload returns
    expected = set().union(*(stored_files(image.filename) for image in images))
    bucket = Bucket(seaweedfs, f"migrate-{secrets.token_hex(4)}")
    env = seaweedfs.app_env() | {
        "S3_BUCKET": bucket.name,
        "DATABASE_URL": unit_database_url,
        "IMAGES_DIR": str(gallery.store.root),
    }

    first = await asyncio.to_thread(run, env, "migrate-storage", "--to", "s3")
    assert first.returncode == 0, first.stderr
    assert "9 copied, 0 already there, 0 failed" in first.stderr
    assert bucket.keys() == expected
    for name in expected:
        assert bucket.get(name) == (gallery.store.root / name).read_bytes()

    again = await asyncio.to_thread(run, env, "migrate-storage", "--to", "s3")
    assert "0 copied, 9 already there, 0 failed" in again.stderr

    checked = await asyncio.to_thread(run, env | {"STORAGE": "s3"}, "check")
    assert checked.returncode == 0, checked.stderr

    back = env | {"IMAGES_DIR": str(tmp_path / "restored")}
    returned = await asyncio.to_thread(run, back, "migrate-storage", "--to", "local")
    assert returned.returncode == 0, returned.stderr
    assert set(files_in(tmp_path / "restored")) == expected
    for name in expected:
        assert (tmp_path / "restored" / name).read_bytes() == bucket.get(name)


def test_it_says_what_is_missing() -> None:
    done = run({"S3_ENDPOINT_URL": ""}, "migrate-storage", "--to", "s3")
    assert done.returncode == 2
    assert "needs S3_ENDPOINT_URL" in done.stderr
