"""backup.sh, for real: images uploaded through a running stack are dumped and archived
under names made of the date and time, readable by this account alone; failures (an
unreachable database, a write that fails half-way, a pg_dump older than the server) leave
no backup behind. Restoring is tests/test_restore.py; Compose mode and the scheduled service
are tests/test_backup_compose.py."""

from __future__ import annotations

import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.backup_fixtures import (
    REPO,
    STAMP,
    OwnStack,
    backup,
    files,
    run_script,
    script_env,
    upload_some,
)
from tests.images import make_noise_jpeg
from tests.support import Browser


def test_backup_writes_a_dump_and_an_archive_named_by_date_and_time(
    own: OwnStack, tmp_path: Path
) -> None:
    upload_some(own)
    dump, archive = backup(own, tmp_path)
    assert re.fullmatch(rf"images_db_{STAMP}\.sql", dump.name)
    assert re.fullmatch(rf"images_{STAMP}\.tar\.gz", archive.name)
    assert dump.name.removeprefix("images_db_")[:-4] == archive.name.removeprefix("images_")[:-7]
    # Nothing else: no temp file left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dump.name, archive.name])
    # They hold the cookie secret and owner hashes: this account's alone.
    assert {oct(p.stat().st_mode & 0o777) for p in (dump, archive)} == {oct(0o600)}
    fresh, _ = backup(own, tmp_path / "new")
    assert oct(fresh.parent.stat().st_mode & 0o777) == oct(0o700)

    text = dump.read_text()
    assert text.startswith("--\n-- PostgreSQL database dump\n")  # plain SQL
    assert "DROP TABLE IF EXISTS public.images;" in text  # --clean --if-exists
    assert "-- PostgreSQL database dump complete" in text.splitlines()[-5:]
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        assert all(m.isfile() for m in members)
        archived = {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    assert archived == files(own.images_dir)

    # A second backup in the same second gets its own name instead of replacing the first.
    again, _ = backup(own, tmp_path)
    assert again != dump and dump.exists()


def test_an_unreachable_database_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    backups = tmp_path / "backups"
    env = script_env(
        DATABASE_URL="postgresql://postgres:s3cret@127.0.0.1:9/images_db", IMAGES_DIR=str(images)
    )
    result = run_script("backup.sh", "--dir", str(backups), env=env)
    assert result.returncode == 1
    assert "cannot reach the database at postgresql://postgres:***@127.0.0.1:9/images_db" in (
        result.stderr
    )
    assert "s3cret" not in result.stderr
    assert list(backups.iterdir()) == []


@pytest.mark.parametrize(
    ("limit_kb", "failing_step"), [(2, "pg_dump failed"), (64, "archiving the images failed")]
)
def test_a_write_that_fails_half_way_leaves_no_backup(
    own: OwnStack, tmp_path: Path, limit_kb: int, failing_step: str
) -> None:
    """A full disk, as the writers see it: a write fails part-way (here: the file size limit,
    which needs no privileges). The dump is ~5 kB, the images ~300 kB."""
    with Browser(own.url) as browser:
        for n in range(3):
            assert browser.upload(f"{n}.jpg", make_noise_jpeg(100_000)).status_code == 201
    command = f'ulimit -f {limit_kb} && exec bash "$0" --dir "$1"'
    result = subprocess.run(
        ["bash", "-c", command, str(REPO / "backup.sh"), str(tmp_path)],
        env=script_env(**own.env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert failing_step in result.stderr
    assert "no backup was written" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_pg_dump_older_than_the_server_is_refused_up_front(own: OwnStack, tmp_path: Path) -> None:
    old = tmp_path / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    old.chmod(0o755)
    result = run_script(
        "backup.sh", "--dir", str(tmp_path / "out"), env=script_env(**own.env, PG_DUMP=str(old))
    )
    assert result.returncode == 1
    assert re.search(r"the server runs PostgreSQL \d+ but the newest pg_dump", result.stderr)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
