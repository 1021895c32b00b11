"""restore.sh and the README's psql command, for real: what backup.sh wrote is lost and
restored under the running stack, and every row and every file's bytes come back (live
galleries refresh); a bad backup is refused before anything is touched, and a failing
database restore puts the images back."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import psycopg
from websockets.asyncio.client import connect

from tests.backup_fixtures import (
    REPO,
    OwnStack,
    backup,
    files,
    originals,
    pg_tool,
    psql_restores,
    rows,
    run_script,
    script_env,
    served_bytes,
    upload_some,
)
from tests.images import make_image
from tests.support import Browser


def test_the_readme_psql_command_restores_onto_an_initialised_database(
    own: OwnStack, tmp_path: Path
) -> None:
    upload_some(own)
    rows_before, files_before = rows(own.database_url), files(own.images_dir)
    dump, archive = backup(own, tmp_path)

    # Life goes on after the backup, then disaster: the gallery is emptied. The database is
    # still the app's (tables in place), as it would be after the app restarted on a new disk.
    with Browser(own.url) as browser:
        assert browser.upload("after-backup.png", make_image()).status_code == 201
    own.wipe()

    # Native form of `docker exec -i db psql -U postgres images_db < backups/<file>`.
    psql_restores([pg_tool("psql"), own.database_url], dump)
    # The README's step for the files by hand.
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(own.images_dir)], check=True)

    assert rows(own.database_url) == rows_before
    assert files(own.images_dir) == files_before
    # A restore by hand sends the backends no event: their kept pages expire within a second.
    deadline = time.monotonic() + 10
    while (served := served_bytes(own)) != originals(files_before):
        assert time.monotonic() < deadline, served.keys()
        time.sleep(0.1)
    # The id sequence came back too: a new upload does not reuse an id.
    with Browser(own.url) as browser:
        response = browser.upload("next.png", make_image())
    assert response.json()["id"] > max(row[0] for row in rows_before)


async def test_restore_sh_replaces_everything_and_live_galleries_refresh(
    own: OwnStack, tmp_path: Path
) -> None:
    await asyncio.to_thread(upload_some, own)
    rows_before, files_before = rows(own.database_url), files(own.images_dir)
    dump, _archive = await asyncio.to_thread(backup, own, tmp_path)
    stamp = dump.name.removeprefix("images_db_").removesuffix(".sql")

    # Worse than before: the schema itself is gone, the files too; a stray file appears.
    with psycopg.connect(own.database_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    shutil.rmtree(own.images_dir)
    own.images_dir.mkdir()
    (own.images_dir / "notes.txt").write_text("not an image")
    env = script_env(**own.env)

    dry_run = await asyncio.to_thread(
        run_script, "restore.sh", stamp, "--dir", str(tmp_path), env=env
    )
    assert dry_run.returncode == 0, dry_run.stderr  # without --yes: a dry run
    assert "dry run" in dry_run.stderr and "--yes" in dry_run.stderr
    assert files(own.images_dir) == {"notes.txt": b"not an image"}  # nothing touched

    ws_url = own.url.replace("http://", "ws://") + "/ws"
    async with connect(ws_url, origin=own.url) as ws:  # type: ignore[arg-type]
        assert json.loads(await ws.recv())["type"] == "hello"
        result = await asyncio.to_thread(
            run_script, "restore.sh", stamp, "--yes", "--dir", str(tmp_path), env=env
        )
        assert result.returncode == 0, result.stderr
        async with asyncio.timeout(5):
            assert json.loads(await ws.recv()) == {"type": "resync"}

    assert rows(own.database_url) == rows_before
    assert files(own.images_dir) == files_before | {"notes.txt": b"not an image"}
    assert await asyncio.to_thread(served_bytes, own) == originals(files_before)
    check = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr


def test_restore_sh_removes_what_the_backup_does_not_have(own: OwnStack, tmp_path: Path) -> None:
    """Restoring onto a gallery that moved on: later uploads go, deleted images come back.
    Thumbnails (thumbs/<hex>-<side>.webp) travel with their images."""
    uploaded = upload_some(own)
    thumbs = own.images_dir / "thumbs"
    thumbs.mkdir(exist_ok=True)
    hexes = [image["filename"].partition(".")[0] for image in uploaded]
    (thumbs / f"{hexes[0]}-320.webp").write_bytes(b"RIFF-thumb-0")
    (thumbs / f"{hexes[1]}-640.webp").write_bytes(b"RIFF-thumb-1")
    rows_before, files_before = rows(own.database_url), files(own.images_dir)
    thumbs_before = files(thumbs)
    backup(own, tmp_path)
    with Browser(own.url) as browser:
        assert browser.upload("later.gif", make_image("GIF")).status_code == 201
    with psycopg.connect(own.database_url) as conn:  # deleted behind the app's back
        conn.execute("DELETE FROM images WHERE id = %s", (uploaded[0]["id"],))
    (own.images_dir / uploaded[0]["filename"]).unlink()
    (thumbs / f"{hexes[0]}-320.webp").unlink()
    (thumbs / f"{'f' * 32}-320.webp").write_bytes(b"RIFF-not-in-the-backup")

    result = run_script(
        "restore.sh", "latest", "--yes", "--dir", str(tmp_path), env=script_env(**own.env)
    )
    assert result.returncode == 0, result.stderr
    assert rows(own.database_url) == rows_before
    assert files(own.images_dir) == files_before
    assert files(thumbs) == thumbs_before


def test_restore_sh_brings_the_schema_back_to_the_backups(own: OwnStack, tmp_path: Path) -> None:
    """A backup from before an upgrade, restored after it: what the newer version added (a
    table, a function, a migration record) goes, so the app's next start migrates forward
    from the backup's version instead of tripping over leftovers."""
    upload_some(own)
    rows_before = rows(own.database_url)
    query = (
        "SELECT (SELECT array_agg(tablename::text ORDER BY tablename) FROM pg_tables"
        " WHERE schemaname = 'public'),"
        " (SELECT array_agg(version ORDER BY version) FROM schema_migrations)"
    )
    with psycopg.connect(own.database_url) as conn:
        schema_before = conn.execute(query).fetchone()
    backup(own, tmp_path)
    with psycopg.connect(own.database_url) as conn:
        conn.execute("CREATE TABLE later_feature (id integer)")
        conn.execute(
            "CREATE FUNCTION later_feature_fn() RETURNS integer LANGUAGE sql AS 'SELECT 1'"
        )
        conn.execute("INSERT INTO schema_migrations (version) VALUES ('999_later_feature')")

    result = run_script(
        "restore.sh", "latest", "--yes", "--dir", str(tmp_path), env=script_env(**own.env)
    )
    assert result.returncode == 0, result.stderr
    assert rows(own.database_url) == rows_before
    with psycopg.connect(own.database_url) as conn:
        assert conn.execute(query).fetchone() == schema_before
        assert conn.execute("SELECT to_regproc('public.later_feature_fn')").fetchone() == (None,)
    check = subprocess.run(
        [sys.executable, "-m", "server", "check"],
        cwd=REPO,
        env=script_env(**own.env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_restore_checks_the_backup_before_touching_anything(own: OwnStack, tmp_path: Path) -> None:
    upload_some(own)
    rows_before, files_before = rows(own.database_url), files(own.images_dir)
    env = script_env(**own.env)
    stamp = "2020-01-02_03-04-05"

    def restore() -> subprocess.CompletedProcess[str]:
        return run_script("restore.sh", stamp, "--yes", "--dir", str(tmp_path), env=env)

    assert "no database dump" in restore().stderr
    dump = tmp_path / f"images_db_{stamp}.sql"
    dump.write_text("-- PostgreSQL database dump\nDROP TABLE images;\n")  # cut short
    assert "no image archive" in restore().stderr
    with tarfile.open(tmp_path / f"images_{stamp}.tar.gz", "w:gz") as tar:
        evil = tmp_path / "evil.png"
        evil.write_bytes(b"x")
        tar.add(evil, arcname="../evil.png")
    failed = restore()
    assert failed.returncode == 1
    assert "incomplete" in failed.stderr
    dump.write_text(dump.read_text() + "-- PostgreSQL database dump complete\n")
    failed = restore()
    assert failed.returncode == 1
    assert "unexpected entries" in failed.stderr
    assert rows(own.database_url) == rows_before
    assert files(own.images_dir) == files_before


def test_a_failing_database_restore_puts_the_images_back(own: OwnStack, tmp_path: Path) -> None:
    upload_some(own)
    dump, _archive = backup(own, tmp_path)
    own.wipe()
    with Browser(own.url) as browser:
        assert browser.upload("current.png", make_image()).status_code == 201
    rows_before, files_before = rows(own.database_url), files(own.images_dir)
    # A dump that fails half-way: the transaction must roll back, the folder return as it was.
    text = dump.read_text()
    dump.write_text(text.replace("COPY public.images", "COPY public.no_such_table", 1))

    result = run_script(
        "restore.sh", "latest", "--yes", "--dir", str(tmp_path), env=script_env(**own.env)
    )
    assert result.returncode == 1
    assert "rolled back" in result.stderr
    assert rows(own.database_url) == rows_before
    assert files(own.images_dir) == files_before


def test_no_images_backs_up_and_restores_the_database_alone(own: OwnStack, tmp_path: Path) -> None:
    upload_some(own)
    rows_before, files_before = rows(own.database_url), files(own.images_dir)
    env = script_env(DATABASE_URL=own.database_url)  # no IMAGES_DIR needed
    result = run_script("backup.sh", "--no-images", "--dir", str(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    [dump] = [Path(line) for line in result.stdout.splitlines()]
    assert [p.name for p in tmp_path.iterdir()] == [dump.name]

    assert "IMAGES_DIR" in run_script("backup.sh", "--dir", str(tmp_path), env=env).stderr
    assert (
        "no image archive"
        in run_script("restore.sh", "latest", "--yes", "--dir", str(tmp_path), env=env).stderr
    )
    with psycopg.connect(own.database_url) as conn:
        conn.execute("TRUNCATE images")
    result = run_script(
        "restore.sh", "latest", "--yes", "--no-images", "--dir", str(tmp_path), env=env
    )
    assert result.returncode == 0, result.stderr
    assert rows(own.database_url) == rows_before
    assert files(own.images_dir) == files_before  # untouched
