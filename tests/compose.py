"""Tools from the venv (docker-compose, hadolint) and the resolved Compose model, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = VENV_BIN / name
    return str(found) if found.exists() else shutil.which(name) or name


def compose_config(tmp_path: Path, *compose_files: str, **env: str) -> dict[str, Any]:
    """The resolved model of `compose_files` (later ones override earlier ones), as `docker
    compose config` prints it, from a copy of the compose files in an empty folder: no .env,
    and nothing from this machine's environment."""
    for name in ("docker-compose.yml", "auto_backup_compose.yml", "docker-compose.s3.yml"):
        shutil.copy(REPO / name, tmp_path / name)
    files = [arg for name in compose_files for arg in ("-f", name)]
    result = subprocess.run(
        [tool("docker-compose"), *files, "config", "--format", "json"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
