"""backup.sh and restore.sh, for real: images uploaded through a running stack are dumped and
archived, lost, restored (with the README's psql command and with restore.sh), and every row
and every file's bytes come back. Also: file names, failures that leave nothing behind, the
scheduled-backup service's wiring and retention."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from websockets.asyncio.client import connect

from tests.backup_fixtures import (
    REPO,
    OwnStack,
    docker_stand_in,
    files,
    own_stack,
    pg_tool,
    rows,
    run_script,
    script_env,
)
from tests.compose import compose_config
from tests.images import make_image, make_noise_jpeg
from tests.support import Browser, PostgresServer

STAMP = r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}"


@pytest.fixture(scope="module")
def own(postgres: PostgresServer) -> Iterator[OwnStack]:
    """A stack of our own: restores replace its whole database under the running backends."""
    with own_stack(postgres.create_database()) as stack:
        yield stack


@pytest.fixture
def stack(own: OwnStack) -> OwnStack:
    own.wipe()
    return own


def upload_some(stack: OwnStack) -> list[dict[str, Any]]:
    """Four images of every format, one deleted again: ids with a gap, names with Unicode."""
    with Browser(stack.url) as browser:
        uploaded = []
        for name, data in [
            ("холм.png", make_image("PNG", color="navy")),
            ("beach.JPG", make_image("JPEG", (64, 48), "orange")),
            ("spin.gif", make_image("GIF", color="lime")),
            ("gone.png", make_image("PNG", color="red")),
            ("late night ☾.jpg", make_noise_jpeg(30_000)),
        ]:
            response = browser.upload(name, data)
            assert response.status_code == 201, response.text
            uploaded.append(response.json())
        assert browser.remove(uploaded[3]["id"]).status_code == 204
    return uploaded[:3] + uploaded[4:]


def backup(stack: OwnStack, folder: Path, *args: str) -> tuple[Path, Path]:
    result = run_script("backup.sh", "--dir", str(folder), *args, env=script_env(**stack.env))
    assert result.returncode == 0, result.stderr
    dump, archive = (Path(line) for line in result.stdout.splitlines())
    return dump, archive


def originals(snapshot: dict[str, bytes]) -> dict[str, bytes]:
    """The images of a `files()` snapshot, without thumbnails."""
    return {name: data for name, data in snapshot.items() if "/" not in name}


def served_bytes(stack: OwnStack) -> dict[str, bytes]:
    """Every image the gallery lists, fetched the way visitors get it: from nginx."""
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        listing = client.get("/images/", headers={"Accept": "application/json"}).json()
        return {
            i["filename"]: client.get(f"/images/{i['filename']}").content for i in listing["images"]
        }


def test_backup_writes_a_dump_and_an_archive_named_by_date_and_time(
    stack: OwnStack, tmp_path: Path
) -> None:
    upload_some(stack)
    dump, archive = backup(stack, tmp_path)
    assert re.fullmatch(rf"images_db_{STAMP}\.sql", dump.name)
    assert re.fullmatch(rf"images_{STAMP}\.tar\.gz", archive.name)
    assert dump.name.removeprefix("images_db_")[:-4] == archive.name.removeprefix("images_")[:-7]
    # Nothing else: no temp file left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dump.name, archive.name])
    # They hold the cookie secret and owner hashes: this account's alone.
    assert {oct(p.stat().st_mode & 0o777) for p in (dump, archive)} == {oct(0o600)}
    fresh, _ = backup(stack, tmp_path / "new")
    assert oct(fresh.parent.stat().st_mode & 0o777) == oct(0o700)

    text = dump.read_text()
    assert text.startswith("--\n-- PostgreSQL database dump\n")  # plain SQL
    assert "DROP TABLE IF EXISTS public.images;" in text  # --clean --if-exists
    assert "-- PostgreSQL database dump complete" in text.splitlines()[-5:]
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        assert all(m.isfile() for m in members)
        archived = {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    assert archived == files(stack.images_dir)

    # A second backup in the same second gets its own name instead of replacing the first.
    again, _ = backup(stack, tmp_path)
    assert again != dump and dump.exists()


def test_the_readme_psql_command_restores_onto_an_initialised_database(
    stack: OwnStack, tmp_path: Path
) -> None:
    upload_some(stack)
    rows_before, files_before = rows(stack.database_url), files(stack.images_dir)
    dump, archive = backup(stack, tmp_path)

    # Life goes on after the backup, then disaster: the gallery is emptied. The database is
    # still the app's (tables in place), as it would be after the app restarted on a new disk.
    with Browser(stack.url) as browser:
        assert browser.upload("after-backup.png", make_image()).status_code == 201
    stack.wipe()

    # Native form of `docker exec -i db psql -U postgres images_db < backups/<file>`.
    with dump.open("rb") as sql:
        result = subprocess.run(
            [pg_tool("psql"), stack.database_url],
            stdin=sql,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0
    assert b"ERROR" not in result.stderr, result.stderr.decode()
    # The README's step for the files by hand.
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(stack.images_dir)], check=True)

    assert rows(stack.database_url) == rows_before
    assert files(stack.images_dir) == files_before
    assert served_bytes(stack) == originals(files_before)
    # The id sequence came back too: a new upload does not reuse an id.
    with Browser(stack.url) as browser:
        response = browser.upload("next.png", make_image())
    assert response.json()["id"] > max(row[0] for row in rows_before)


async def test_restore_sh_replaces_everything_and_live_galleries_refresh(
    stack: OwnStack, tmp_path: Path
) -> None:
    await asyncio.to_thread(upload_some, stack)
    rows_before, files_before = rows(stack.database_url), files(stack.images_dir)
    dump, _archive = await asyncio.to_thread(backup, stack, tmp_path)
    stamp = dump.name.removeprefix("images_db_").removesuffix(".sql")

    # Worse than before: the schema itself is gone, the files too; a stray file appears.
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    shutil.rmtree(stack.images_dir)
    stack.images_dir.mkdir()
    (stack.images_dir / "notes.txt").write_text("not an image")
    env = script_env(**stack.env)

    dry_run = await asyncio.to_thread(
        run_script, "restore.sh", stamp, "--dir", str(tmp_path), env=env
    )
    assert dry_run.returncode == 0, dry_run.stderr  # without --yes: a dry run
    assert "dry run" in dry_run.stderr and "--yes" in dry_run.stderr
    assert files(stack.images_dir) == {"notes.txt": b"not an image"}  # nothing touched

    ws_url = stack.url.replace("http://", "ws://") + "/ws"
    async with connect(ws_url, origin=stack.url) as ws:  # type: ignore[arg-type]
        assert json.loads(await ws.recv())["type"] == "hello"
        result = await asyncio.to_thread(
            run_script, "restore.sh", stamp, "--yes", "--dir", str(tmp_path), env=env
        )
        assert result.returncode == 0, result.stderr
        async with asyncio.timeout(5):
            assert json.loads(await ws.recv()) == {"type": "resync"}

    assert rows(stack.database_url) == rows_before
    assert files(stack.images_dir) == files_before | {"notes.txt": b"not an image"}
    assert await asyncio.to_thread(served_bytes, stack) == originals(files_before)
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


def test_restore_sh_removes_what_the_backup_does_not_have(stack: OwnStack, tmp_path: Path) -> None:
    """Restoring onto a gallery that moved on: later uploads go, deleted images come back.
    Thumbnails (thumbs/<hex>-<side>.webp) travel with their images."""
    uploaded = upload_some(stack)
    thumbs = stack.images_dir / "thumbs"
    thumbs.mkdir(exist_ok=True)
    hexes = [image["filename"].partition(".")[0] for image in uploaded]
    (thumbs / f"{hexes[0]}-320.webp").write_bytes(b"RIFF-thumb-0")
    (thumbs / f"{hexes[1]}-640.webp").write_bytes(b"RIFF-thumb-1")
    rows_before, files_before = rows(stack.database_url), files(stack.images_dir)
    thumbs_before = files(thumbs)
    backup(stack, tmp_path)
    with Browser(stack.url) as browser:
        assert browser.upload("later.gif", make_image("GIF")).status_code == 201
    with psycopg.connect(stack.database_url) as conn:  # deleted behind the app's back
        conn.execute("DELETE FROM images WHERE id = %s", (uploaded[0]["id"],))
    (stack.images_dir / uploaded[0]["filename"]).unlink()
    (thumbs / f"{hexes[0]}-320.webp").unlink()
    (thumbs / f"{'f' * 32}-320.webp").write_bytes(b"RIFF-not-in-the-backup")

    result = run_script(
        "restore.sh", "latest", "--yes", "--dir", str(tmp_path), env=script_env(**stack.env)
    )
    assert result.returncode == 0, result.stderr
    assert rows(stack.database_url) == rows_before
    assert files(stack.images_dir) == files_before
    assert files(thumbs) == thumbs_before


def test_restore_sh_brings_the_schema_back_to_the_backups(stack: OwnStack, tmp_path: Path) -> None:
    """A backup from before an upgrade, restored after it: what the newer version added (a
    table, a function, a migration record) goes, so the app's next start migrates forward
    from the backup's version instead of tripping over leftovers."""
    upload_some(stack)
    rows_before = rows(stack.database_url)
    query = (
        "SELECT (SELECT array_agg(tablename::text ORDER BY tablename) FROM pg_tables"
        " WHERE schemaname = 'public'),"
        " (SELECT array_agg(version ORDER BY version) FROM schema_migrations)"
    )
    with psycopg.connect(stack.database_url) as conn:
        schema_before = conn.execute(query).fetchone()
    backup(stack, tmp_path)
    with psycopg.connect(stack.database_url) as conn:
        conn.execute("CREATE TABLE later_feature (id integer)")
        conn.execute(
            "CREATE FUNCTION later_feature_fn() RETURNS integer LANGUAGE sql AS 'SELECT 1'"
        )
        conn.execute("INSERT INTO schema_migrations (version) VALUES ('999_later_feature')")

    result = run_script(
        "restore.sh", "latest", "--yes", "--dir", str(tmp_path), env=script_env(**stack.env)
    )
    assert result.returncode == 0, result.stderr
    assert rows(stack.database_url) == rows_before
    with psycopg.connect(stack.database_url) as conn:
        assert conn.execute(query).fetchone() == schema_before
        assert conn.execute("SELECT to_regproc('public.later_feature_fn')").fetchone() == (None,)
    check = subprocess.run(
        [sys.executable, "-m", "server", "check"],
        cwd=REPO,
        env=script_env(**stack.env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_restore_checks_the_backup_before_touching_anything(
    stack: OwnStack, tmp_path: Path
) -> None:
    upload_some(stack)
    rows_before, files_before = rows(stack.database_url), files(stack.images_dir)
    env = script_env(**stack.env)
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
    assert rows(stack.database_url) == rows_before
    assert files(stack.images_dir) == files_before


def test_a_failing_database_restore_puts_the_images_back(stack: OwnStack, tmp_path: Path) -> None:
    upload_some(stack)
    dump, _archive = backup(stack, tmp_path)
    stack.wipe()
    with Browser(stack.url) as browser:
        assert browser.upload("current.png", make_image()).status_code == 201
    rows_before, files_before = rows(stack.database_url), files(stack.images_dir)
    # A dump that fails half-way: the transaction must roll back, the folder return as it was.
    text = dump.read_text()
    dump.write_text(text.replace("COPY public.images", "COPY public.no_such_table", 1))

    result = run_script(
        "restore.sh", "latest", "--yes", "--dir", str(tmp_path), env=script_env(**stack.env)
    )
    assert result.returncode == 1
    assert "rolled back" in result.stderr
    assert rows(stack.database_url) == rows_before
    assert files(stack.images_dir) == files_before


def test_no_images_backs_up_and_restores_the_database_alone(
    stack: OwnStack, tmp_path: Path
) -> None:
    upload_some(stack)
    rows_before, files_before = rows(stack.database_url), files(stack.images_dir)
    env = script_env(DATABASE_URL=stack.database_url)  # no IMAGES_DIR needed
    result = run_script("backup.sh", "--no-images", "--dir", str(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    [dump] = [Path(line) for line in result.stdout.splitlines()]
    assert [p.name for p in tmp_path.iterdir()] == [dump.name]

    assert "IMAGES_DIR" in run_script("backup.sh", "--dir", str(tmp_path), env=env).stderr
    assert (
        "no image archive"
        in run_script("restore.sh", "latest", "--yes", "--dir", str(tmp_path), env=env).stderr
    )
    with psycopg.connect(stack.database_url) as conn:
        conn.execute("TRUNCATE images")
    result = run_script(
        "restore.sh", "latest", "--yes", "--no-images", "--dir", str(tmp_path), env=env
    )
    assert result.returncode == 0, result.stderr
    assert rows(stack.database_url) == rows_before
    assert files(stack.images_dir) == files_before  # untouched


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
    stack: OwnStack, tmp_path: Path, limit_kb: int, failing_step: str
) -> None:
    """A full disk, as the writers see it: a write fails part-way (here: the file size limit,
    which needs no privileges). The dump is ~5 kB, the images ~300 kB."""
    with Browser(stack.url) as browser:
        for n in range(3):
            assert browser.upload(f"{n}.jpg", make_noise_jpeg(100_000)).status_code == 201
    command = f'ulimit -f {limit_kb} && exec bash "$0" --dir "$1"'
    result = subprocess.run(
        ["bash", "-c", command, str(REPO / "backup.sh"), str(tmp_path)],
        env=script_env(**stack.env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert failing_step in result.stderr
    assert "no backup was written" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_pg_dump_older_than_the_server_is_refused_up_front(
    stack: OwnStack, tmp_path: Path
) -> None:
    old = tmp_path / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    old.chmod(0o755)
    result = run_script(
        "backup.sh", "--dir", str(tmp_path / "out"), env=script_env(**stack.env, PG_DUMP=str(old))
    )
    assert result.returncode == 1
    assert re.search(r"the server runs PostgreSQL \d+ but the newest pg_dump", result.stderr)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_compose_mode_runs_the_same_backup_and_restore_in_the_containers(
    stack: OwnStack, tmp_path: Path
) -> None:
    """Without DATABASE_URL the scripts go through `docker exec db …` and `docker compose exec
    backend …`. No Docker daemon here: a stand-in runs those container commands on this
    machine, so what is checked is every command line the scripts send and that the results
    restore, including with the README's `docker exec -i db psql -U postgres images_db`."""
    upload_some(stack)
    rows_before, files_before = rows(stack.database_url), files(stack.images_dir)
    env = docker_stand_in(tmp_path, stack.database_url, stack.images_dir)
    backups = tmp_path / "backups"

    result = run_script("backup.sh", "--dir", str(backups), env=env)
    assert result.returncode == 0, result.stderr
    dump, archive = (Path(line) for line in result.stdout.splitlines())
    calls = (tmp_path / "docker.log").read_text()
    assert "docker exec db pg_dump -U postgres --clean --if-exists images_db\n" in calls
    assert "exec -T backend sh -c" in calls and "images archive /images\n" in calls

    stack.wipe()
    with dump.open("rb") as sql:
        documented = subprocess.run(
            ["docker", "exec", "-i", "db", "psql", "-U", "postgres", "images_db"],
            stdin=sql,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert documented.returncode == 0
    assert b"ERROR" not in documented.stderr, documented.stderr.decode()
    assert rows(stack.database_url) == rows_before

    stack.wipe()
    stamp = dump.name.removeprefix("images_db_").removesuffix(".sql")
    assert archive.name == f"images_{stamp}.tar.gz"
    result = run_script("restore.sh", stamp, "--yes", "--dir", str(backups), env=env)
    assert result.returncode == 0, result.stderr
    assert rows(stack.database_url) == rows_before
    assert files(stack.images_dir) == files_before
    calls = (tmp_path / "docker.log").read_text()
    assert "docker exec -i db psql -X -U postgres -d images_db -q -v ON_ERROR_STOP=1" in calls


def test_compose_mode_says_when_the_stack_is_not_running(stack: OwnStack, tmp_path: Path) -> None:
    upload_some(stack)
    env = docker_stand_in(tmp_path, stack.database_url, stack.images_dir)
    backups = tmp_path / "backups"
    assert run_script("backup.sh", "--dir", str(backups), env=env).returncode == 0
    made = sorted(backups.iterdir())
    rows_before = rows(stack.database_url)

    env["STAND_IN_DB_RUNNING"] = "false"
    for script, args in [("backup.sh", ()), ("restore.sh", ("latest", "--yes"))]:
        result = run_script(script, *args, "--dir", str(backups), env=env)
        assert result.returncode == 1, script
        assert "the 'db' container is not running: start the stack" in result.stderr, script
    assert sorted(backups.iterdir()) == made
    assert rows(stack.database_url) == rows_before


# -- scheduled backups (auto_backup_compose.yml) -------------------------------------------


def test_scheduled_backups_reuse_the_app_and_keep_seven_daily_copies(tmp_path: Path) -> None:
    model = compose_config(tmp_path, "auto_backup_compose.yml")
    assert set(model["services"]) == {"db", "backend", "nginx", "backup"}
    assert "include:\n  - docker-compose.yml" in (REPO / "auto_backup_compose.yml").read_text()
    backup_service = model["services"]["backup"]
    env = backup_service["environment"]
    assert env["SCHEDULE"] == "@daily"
    assert (env["BACKUP_KEEP_DAYS"], env["BACKUP_KEEP_WEEKS"], env["BACKUP_KEEP_MONTHS"]) == (
        "7",
        "4",
        "6",
    )
    assert env["POSTGRES_PASSWORD"] == model["services"]["db"]["environment"]["POSTGRES_PASSWORD"]
    # The image writes BACKUP_DIR/daily/…, BACKUP_DIR/weekly/…: here that is ./backups/daily.
    assert env["BACKUP_DIR"] == "/backups"
    [volume] = backup_service["volumes"]
    assert (volume["type"], volume["source"], volume["target"]) == (
        "bind",
        str(tmp_path / "backups"),
        "/backups",
    )
    assert set(env["POSTGRES_EXTRA_OPTS"].split()) >= {"--clean", "--if-exists"}


def test_schedule_and_retention_come_from_the_env_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "BACKUP_SCHEDULE=0 30 3 * * *\nBACKUP_KEEP_DAYS=14\n"
        "BACKUP_KEEP_WEEKS=8\nBACKUP_KEEP_MONTHS=12\n"
    )
    env = compose_config(tmp_path, "auto_backup_compose.yml")["services"]["backup"]["environment"]
    assert env["SCHEDULE"] == "0 30 3 * * *"
    assert (env["BACKUP_KEEP_DAYS"], env["BACKUP_KEEP_WEEKS"], env["BACKUP_KEEP_MONTHS"]) == (
        "14",
        "8",
        "12",
    )


def test_backup_settings_are_documented_with_their_defaults(tmp_path: Path) -> None:
    env = compose_config(tmp_path, "auto_backup_compose.yml")["services"]["backup"]["environment"]
    example = (REPO / ".env.example").read_text()
    readme = (REPO / "README.md").read_text()
    for setting, variable in [
        ("BACKUP_SCHEDULE", "SCHEDULE"),
        ("BACKUP_KEEP_DAYS", "BACKUP_KEEP_DAYS"),
        ("BACKUP_KEEP_WEEKS", "BACKUP_KEEP_WEEKS"),
        ("BACKUP_KEEP_MONTHS", "BACKUP_KEEP_MONTHS"),
    ]:
        assert re.search(rf"^#? ?{setting}={re.escape(env[variable])}$", example, re.M), setting
        assert re.search(rf"^\|\s*`{setting}`\s*\|\s*`{re.escape(env[variable])}`", readme, re.M)


def test_scheduled_dump_options_restore_onto_an_initialised_database(
    stack: OwnStack, tmp_path: Path
) -> None:
    """What the backup container runs (`pg_dump -f FILE $POSTGRES_EXTRA_OPTS DB`, gzipped plain
    SQL) restores with the README's `gunzip -c … | psql` onto the app's database."""
    upload_some(stack)
    rows_before = rows(stack.database_url)
    env = compose_config(tmp_path, "auto_backup_compose.yml")["services"]["backup"]["environment"]
    daily = tmp_path / "images_db-20260101.sql.gz"
    dump_command = [pg_tool("pg_dump"), "-f", str(daily), *env["POSTGRES_EXTRA_OPTS"].split()]
    subprocess.run([*dump_command, stack.database_url], check=True, timeout=60)
    stack.wipe()
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", 'gunzip -c "$0" | "$1" "$2"', str(daily)]
        + [pg_tool("psql"), stack.database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "ERROR" not in result.stderr, result.stderr
    assert rows(stack.database_url) == rows_before
