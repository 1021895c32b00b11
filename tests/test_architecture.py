"""The module rules of STYLE.md, checked with `ast`: who may import what."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def top(name: str) -> str:
    return name.split(".")[0]


SERVER_BELOW_APP = [
    p for p in sorted((REPO / "server").rglob("*.py")) if p.name not in ("app.py", "__main__.py")
]
HANDLERS = sorted((REPO / "handlers").glob("*.py"))


@pytest.mark.parametrize("path", SERVER_BELOW_APP, ids=lambda p: p.name)
def test_domain_modules_do_not_import_tornado_or_handlers(path: Path) -> None:
    assert not {top(n) for n in imports_of(path)} & {"tornado", "handlers"}


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: p.name)
def test_handlers_touch_no_sql_pillow_or_storage(path: Path) -> None:
    forbidden = {"psycopg", "psycopg_pool", "PIL", "server.repository", "server.db"}
    forbidden |= {"server.storage", "server.imaging", "os", "pathlib"}
    found = {n for n in imports_of(path) if n in forbidden or top(n) in forbidden}
    assert not found


@pytest.mark.parametrize("name", ["models.py", "errors.py", "formats.py"])
def test_models_errors_and_formats_use_only_the_standard_library(name: str) -> None:
    import sys

    for module in imports_of(REPO / "server" / name):
        stdlib = top(module) in sys.stdlib_module_names or module == "__future__"
        assert stdlib or module == "server.formats", module


def test_only_the_s3_store_knows_the_s3_client() -> None:
    for path in [*SERVER_BELOW_APP, *HANDLERS, REPO / "server" / "app.py"]:
        if path != REPO / "server" / "storage" / "s3.py":
            assert not {top(n) for n in imports_of(path)} & {"boto3", "botocore"}, path.name


def test_sql_lives_only_in_the_repository_and_db_modules() -> None:
    for path in SERVER_BELOW_APP + HANDLERS:
        if path.name in ("repository.py", "db.py"):
            continue
        source = path.read_text()
        for keyword in ("SELECT ", "INSERT ", "DELETE FROM", "UPDATE "):
            assert keyword not in source, f"{path.name} contains SQL ({keyword.strip()})"
