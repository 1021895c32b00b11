"""The first run on a fresh clone: `scripts/local-stack --help` before anything is installed,
.venv set up by the script itself, a busy port refused before anything starts, and the
`stack.env` that backup.sh, restore.sh and `python -m server check` read with one flag."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.images import make_image
from tests.support import Browser, Stack

# scripts/local-stack from a fresh clone: it sets up .venv and starts (or refuses) the stack.
pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parent.parent
# What a fresh clone's environment may carry that would point the scripts elsewhere.
_STACK_VARIABLES = ("PYTHON", "BASE_PYTHON", "DATABASE_URL", "IMAGES_DIR")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _STACK_VARIABLES}
    return env | extra


@pytest.fixture
def fresh_clone(tmp_path: Path) -> Path:
    """The stack's own files, with no .venv: what a fresh clone has before any install."""
    root = tmp_path / "clone"
    shutil.copytree(REPO / "scripts", root / "scripts", ignore=shutil.ignore_patterns("__py*"))
    shutil.copytree(REPO / "nginx", root / "nginx")
    (root / "requirements.txt").write_text("# nothing to install for this test\n")
    return root


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another program (this test) listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_help_works_before_anything_is_installed(fresh_clone: Path, tmp_path: Path) -> None:
    # A python3 that sees no third-party package at all (-S: no site-packages).
    bare = tmp_path / "bin"
    bare.mkdir()
    shim = bare / "python3"
    shim.write_text(f'#!/bin/sh\nexec {sys._base_executable} -S "$@"\n')  # type: ignore[attr-defined]
    shim.chmod(0o755)
    env = clean_env(PATH=f"{bare}:{os.environ['PATH']}")
    probe = subprocess.run(["python3", "-c", "import psycopg"], env=env, capture_output=True)
    assert probe.returncode != 0  # the test's premise: psycopg cannot be imported

    result = subprocess.run(
        [str(fresh_clone / "scripts" / "local-stack"), "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: local-stack")
    assert 'make run ARGS="--port 8081' in result.stdout
    assert "Traceback" not in result.stderr
    assert not (fresh_clone / ".venv").exists()  # --help installs nothing


def test_first_run_sets_up_the_venv_and_refuses_a_busy_port(
    fresh_clone: Path, busy_port: int, tmp_path: Path
) -> None:
    command = [str(fresh_clone / "scripts" / "local-stack"), f"--port={busy_port}"]
    command.append(f"--data-dir={tmp_path / 'data'}")

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, env=clean_env(), capture_output=True, text=True, timeout=300, check=False
        )

    first = run()
    assert (fresh_clone / ".venv" / "bin" / "python").exists(), first.stderr
    assert "creating .venv" in first.stderr
    stamp = fresh_clone / ".venv" / ".runtime-requirements"
    assert stamp.read_text() == (fresh_clone / "requirements.txt").read_text()
    # The stack ran from that .venv and refused the port before starting anything.
    assert first.returncode == 1
    assert first.stdout == ""  # no `ready` line
    assert f"port {busy_port} on 127.0.0.1 is already in use" in first.stderr
    assert "make run ARGS=" in first.stderr
    assert not (tmp_path / "data").exists()

    second = run()  # .venv is up to date: no pip this time
    assert second.returncode == 1
    assert "installing" not in second.stderr and "creating" not in second.stderr


def test_the_real_stack_refuses_a_busy_port_before_starting(busy_port: int, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(REPO / "scripts" / "local-stack"), f"--port={busy_port}"]
        + [f"--data-dir={tmp_path / 'data'}"],
        env=clean_env(PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "already in use" in result.stderr and "nothing was started" in result.stderr
    assert "starting PostgreSQL" not in result.stderr


# -- stack.env ---------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and line[0] != "#"]
    return dict(line.split("=", 1) for line in lines)


def test_stack_env_names_the_database_and_images(site: Stack) -> None:
    env_file = site.running.data_dir / "stack.env"
    assert read_env_file(env_file) == {
        "DATABASE_URL": site.database_url,
        "IMAGES_DIR": str(site.images_dir),
    }
    assert env_file.stat().st_mode & 0o077 == 0  # a given URL may hold a password


def test_check_backup_and_restore_read_stack_env_with_one_flag(
    site: Stack, browser: Browser, tmp_path: Path
) -> None:
    assert browser.upload("one.png", make_image("PNG")).status_code == 201
    env_file = str(site.running.data_dir / "stack.env")
    env = clean_env()  # neither DATABASE_URL nor IMAGES_DIR: only the file says where

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    check = run(sys.executable, "-m", "server", "--env-file", env_file, "check")
    assert check.returncode == 0, check.stderr
    assert "1 rows and 1 files agree" in check.stderr

    backups = tmp_path / "backups"
    backup = run("bash", "backup.sh", "--env-file", env_file, "--dir", str(backups))
    assert backup.returncode == 0, backup.stderr
    assert len(list(backups.glob("images_db_*.sql"))) == 1
    assert len(list(backups.glob("images_*.tar.gz"))) == 1

    # Without --yes: a dry run that changes nothing and exits 0.
    before = site.files()
    dry = run("bash", "restore.sh", "latest", f"--env-file={env_file}", "--dir", str(backups))
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stderr and str(site.images_dir) in dry.stderr
    assert site.files() == before

    # The README's way: make passes the file on.
    made = run("make", "--no-print-directory", "check", f"STACK_ENV={env_file}")
    assert made.returncode == 0, made.stdout + made.stderr
    assert "1 rows and 1 files agree" in made.stderr

    missing = run(sys.executable, "-m", "server", "--env-file", "/nonexistent.env", "check")
    assert missing.returncode == 2
    assert "/nonexistent.env is not a file" in missing.stderr


# -- README's native commands -------------------------------------------------------------


def test_readme_commands_work_as_written() -> None:
    readme = (REPO / "README.md").read_text()
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    for target in set(re.findall(r"`make ([a-z]+(?:-[a-z]+)*)\b", readme)):
        assert target in targets, f"README mentions `make {target}`, which the Makefile lacks"
    # `python -m server` only runs inside .venv (or a container): a bare one fails elsewhere.
    commands = list(
        re.finditer(r"python -m server (?:--env-file \S+ )?(?:check|thumbnails)", readme)
    )
    assert len(commands) >= 4
    for match in commands:
        before = readme[max(0, match.start() - 30) : match.start()]
        assert before.endswith((".venv/bin/", "exec backend ")), before
    assert "shared/STYLE.md" not in readme  # the project documents itself
    assert "(docs/ARCHITECTURE.md)" in readme
    assert (REPO / "docs" / "ARCHITECTURE.md").exists()
    assert "/data/" in (REPO / ".gitignore").read_text().split()  # the native IMAGES_DIR default
