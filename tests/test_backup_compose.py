"""Backups under Docker Compose: backup.sh and restore.sh in Compose mode (through a stand-in
for `docker`), and the scheduled backup service of auto_backup_compose.yml (its wiring,
schedule, retention and dump options)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.backup_fixtures import (
    REPO,
    OwnStack,
    docker_stand_in,
    files,
    pg_tool,
    psql_restores,
    rows,
    run_script,
    upload_some,
)
from tests.compose import compose_config

pytestmark = pytest.mark.compose


def test_compose_mode_runs_the_same_backup_and_restore_in_the_containers(
    own: OwnStack, tmp_path: Path
) -> None:
    """Without DATABASE_URL the scripts go through `docker exec db …` and `docker compose exec
    backend …`. No Docker daemon here: a stand-in runs those container commands on this
    machine, so what is checked is every command line the scripts send and that the results
    restore, including with the README's `docker exec -i db psql -U postgres images_db`."""
    upload_some(own)
    rows_before, files_before = rows(own.database_url), files(own.images_dir)
    env = docker_stand_in(tmp_path, own.database_url, own.images_dir)
    backups = tmp_path / "backups"

    result = run_script("backup.sh", "--dir", str(backups), env=env)
    assert result.returncode == 0, result.stderr
    dump, archive = (Path(line) for line in result.stdout.splitlines())
    calls = (tmp_path / "docker.log").read_text()
    assert "docker exec db pg_dump -U postgres --clean --if-exists images_db\n" in calls
    assert "exec -T backend sh -c" in calls and "images archive /images\n" in calls

    own.wipe()
    psql_restores(["docker", "exec", "-i", "db", "psql", "-U", "postgres", "images_db"], dump, env)
    assert rows(own.database_url) == rows_before

    own.wipe()
    stamp = dump.name.removeprefix("images_db_").removesuffix(".sql")
    assert archive.name == f"images_{stamp}.tar.gz"
    result = run_script("restore.sh", stamp, "--yes", "--dir", str(backups), env=env)
    assert result.returncode == 0, result.stderr
    assert rows(own.database_url) == rows_before
    assert files(own.images_dir) == files_before
    calls = (tmp_path / "docker.log").read_text()
    assert "docker exec -i db psql -X -U postgres -d images_db -q -v ON_ERROR_STOP=1" in calls


def test_compose_mode_says_when_the_stack_is_not_running(own: OwnStack, tmp_path: Path) -> None:
    upload_some(own)
    env = docker_stand_in(tmp_path, own.database_url, own.images_dir)
    backups = tmp_path / "backups"
    assert run_script("backup.sh", "--dir", str(backups), env=env).returncode == 0
    made = sorted(backups.iterdir())
    rows_before = rows(own.database_url)

    env["STAND_IN_DB_RUNNING"] = "false"
    for script, args in [("backup.sh", ()), ("restore.sh", ("latest", "--yes"))]:
        result = run_script(script, *args, "--dir", str(backups), env=env)
        assert result.returncode == 1, script
        assert "the 'db' container is not running: start the stack" in result.stderr, script
    assert sorted(backups.iterdir()) == made
    assert rows(own.database_url) == rows_before


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
    own: OwnStack, tmp_path: Path
) -> None:
    """What the backup container runs (`pg_dump -f FILE $POSTGRES_EXTRA_OPTS DB`, gzipped plain
    SQL) restores with the README's `gunzip -c … | psql` onto the app's database."""
    upload_some(own)
    rows_before = rows(own.database_url)
    env = compose_config(tmp_path, "auto_backup_compose.yml")["services"]["backup"]["environment"]
    daily = tmp_path / "images_db-20260101.sql.gz"
    dump_command = [pg_tool("pg_dump"), "-f", str(daily), *env["POSTGRES_EXTRA_OPTS"].split()]
    subprocess.run([*dump_command, own.database_url], check=True, timeout=60)
    own.wipe()
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", 'gunzip -c "$0" | "$1" "$2"', str(daily)]
        + [pg_tool("psql"), own.database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "ERROR" not in result.stderr, result.stderr
    assert rows(own.database_url) == rows_before
