"""Helpers for the backup, restore and integrity tests: a local stack of their own, running
the shell scripts, uploads to back up, and snapshots of everything a backup must bring back
(every row, every file's bytes)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from scripts.launch import running_stack
from scripts.pgcluster import find_bin_dir
from tests.images import make_image, make_noise_jpeg
from tests.support import Browser, Stack

REPO = Path(__file__).resolve().parent.parent
# Settings the scripts read from the environment; each test passes its own.
_SCRIPT_SETTINGS = ("DATABASE_URL", "IMAGES_DIR", "PG_DUMP", "PSQL", "PG_BIN_DIR")


class OwnStack(Stack):
    """scripts/local-stack (nginx + 2 backends) on a database of its own."""

    @property
    def env(self) -> dict[str, str]:
        """What backup.sh and restore.sh need for a native run against this stack."""
        return {"DATABASE_URL": self.database_url, "IMAGES_DIR": str(self.images_dir)}

    def wipe(self) -> None:
        """Rows and the whole images folder gone, as after losing the volume."""
        super().wipe()
        shutil.rmtree(self.images_dir)
        self.images_dir.mkdir()


@contextmanager
def own_stack(database_url: str) -> Iterator[OwnStack]:
    with running_stack(workers=2, database_url=database_url) as running:
        yield OwnStack(running, database_url)


def script_env(**settings: str) -> dict[str, str]:
    """This process's environment without any of the scripts' settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRIPT_SETTINGS}
    return env | settings


def run_script(
    name: str, *args: str, env: dict[str, str], **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """`bash <name> args…` from the repository root, as the README shows it."""
    return subprocess.run(
        ["bash", str(REPO / name), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def pg_tool(name: str) -> str:
    """A PostgreSQL client program from the newest server install (the one the test cluster
    runs from), so it is never older than the server; else whatever PATH has."""
    found = find_bin_dir() / name
    return str(found) if found.exists() else shutil.which(name) or name


def rows(database_url: str) -> list[tuple[Any, ...]]:
    """Every column of every image row, in id order."""
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT * FROM images ORDER BY id").fetchall()


def files(images_dir: Path) -> dict[str, bytes]:
    """Every file under the folder (thumbnails too), by path relative to it."""
    return {
        str(p.relative_to(images_dir)): p.read_bytes()
        for p in sorted(images_dir.rglob("*"))
        if p.is_file()
    }


# A stand-in for the Docker CLI, for machines without a Docker daemon (this one, CI): it runs
# on this machine what each command would run inside the Compose containers, against the
# test's database (for `images_db`) and images folder (for `/images`), and logs every call.
_DOCKER_STAND_IN = r"""#!/usr/bin/env bash
set -euo pipefail
echo "docker $*" >>"${STAND_IN_LOG}"
swap() {  # the container's names for things -> the test's
    local arg
    for arg in "$@"; do
        case "${arg}" in
            images_db) printf '%s\0' "${STAND_IN_DBNAME}" ;;
            /images) printf '%s\0' "${STAND_IN_IMAGES_DIR}" ;;
            *) printf '%s\0' "${arg}" ;;
        esac
    done
}
case "$1" in
    inspect) echo "${STAND_IN_DB_RUNNING:-true}" ;;
    exec)  # docker exec [-i] db PROGRAM ARGS...: PostgreSQL's own tools, as in the db container
        shift
        [[ "$1" == -i ]] && shift
        shift
        mapfile -d '' args < <(swap "$@")
        exec "${STAND_IN_PG_BIN}/${args[0]}" "${args[@]:1}" ;;
    compose)
        shift
        [[ "$1" == version ]] && exit 0
        while [[ "$1" == --project-directory || "$1" == -f ]]; do shift 2; done
        case "$1" in
            ps) echo 0123456789ab ;;
            exec)  # docker compose exec -T backend PROGRAM ARGS...
                shift 3
                mapfile -d '' args < <(swap "$@")
                exec "${args[@]}" ;;
        esac ;;
esac
echo "docker stand-in: unexpected call: docker $*" >&2
exit 64
"""


def docker_stand_in(folder: Path, database_url: str, images_dir: Path) -> dict[str, str]:
    """Environment for running the scripts in Compose mode against the stand-in."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(_DOCKER_STAND_IN)
    docker.chmod(0o755)
    params = psycopg.conninfo.conninfo_to_dict(database_url)
    return script_env(
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        STAND_IN_LOG=str(folder / "docker.log"),
        STAND_IN_DBNAME=str(params["dbname"]),
        STAND_IN_IMAGES_DIR=str(images_dir),
        STAND_IN_PG_BIN=str(find_bin_dir()),
        PGHOST=str(params.get("host", "127.0.0.1")),
        PGPORT=str(params.get("port", "5432")),
    )


STAMP = r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}"


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


def psql_restores(command: list[str], dump: Path, env: dict[str, str] | None = None) -> None:
    """The README's restore by hand: `command` (a psql) reads the dump on its stdin and
    finishes without an error."""
    with dump.open("rb") as sql:
        result = subprocess.run(
            command, stdin=sql, env=env, capture_output=True, timeout=60, check=False
        )
    assert result.returncode == 0
    assert b"ERROR" not in result.stderr, result.stderr.decode()
