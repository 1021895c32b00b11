"""backup.sh and restore.sh (native mode) with STORAGE=s3: the archive holds the bucket's
images and thumbnails in the same layout as a folder's, and a restore puts them back."""

from __future__ import annotations

import tarfile
from pathlib import Path

import httpx
import pytest

from tests.backup_fixtures import pg_tool, run_script, script_env
from tests.images import make_image
from tests.support import Browser, Stack, stored_files


@pytest.mark.parametrize("site", ["s3"], indirect=True)
def test_a_bucket_is_backed_up_and_restored(site: Stack, browser: Browser, tmp_path: Path) -> None:
    kept = browser.upload("kept.png", make_image()).json()
    gone = browser.upload("gone.png", make_image(color="navy")).json()
    for image in (kept, gone):
        browser.wait_for_thumbnails(image["id"])  # made after the answer
    saved = stored_files(kept["filename"]) | stored_files(gone["filename"])
    contents = {name: site.read(name) for name in saved}
    env = script_env(**site.env, PG_DUMP=pg_tool("pg_dump"), PSQL=pg_tool("psql"))
    backups = tmp_path / "backups"

    made = run_script("backup.sh", "--dir", str(backups), env=env)
    assert made.returncode == 0, made.stderr
    (archive,) = backups.glob("images_*.tar.gz")
    with tarfile.open(archive) as tar:
        assert set(tar.getnames()) == saved

    assert browser.remove(gone["id"]).status_code == 204
    later = browser.upload("later.png", make_image(color="olive")).json()
    browser.wait_for_thumbnails(later["id"])
    assert site.files() == stored_files(kept["filename"]) | stored_files(later["filename"])

    restored = run_script("restore.sh", "latest", "--yes", "--dir", str(backups), env=env)
    assert restored.returncode == 0, restored.stderr
    assert site.rows() == 2
    assert {name: site.read(name) for name in saved} == contents
    assert httpx.get(gone["url"]).content == contents[gone["filename"]]

    # The upload made after the backup has no row now: its objects stay until `check --repair`
    # finds them older than its in-flight window (not tested here: ten minutes).
    assert site.files() == saved | stored_files(later["filename"])
