"""The tiers stay honest: a test module that starts nginx by itself (a stack, a rendered
template, scripts/local-stack) is marked for it, so `make test-fast` never needs nginx."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import _STACK_FIXTURES

TESTS = Path(__file__).resolve().parent
STARTS_NGINX = re.compile(r"running_stack\(|nginx_command\(|own_stack\(|\"local-stack\"")


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(TESTS.glob("test_*.py")) if STARTS_NGINX.search(p.read_text())],
    ids=lambda p: p.name,
)
def test_modules_that_start_nginx_are_marked(path: Path) -> None:
    source = path.read_text()
    marked = re.search(r"pytest\.mark\.(stack|compose)\b", source)
    # …or every such test reaches nginx through a fixture that marks it (conftest.py).
    through_fixture = any(re.search(rf"[(,]\s*{name}: ", source) for name in _STACK_FIXTURES)
    assert marked or through_fixture, f"{path.name} starts nginx but is in the fast tier"


def test_the_tiers_are_registered() -> None:
    text = (TESTS.parent / "pyproject.toml").read_text()
    for marker in ("stack", "browser", "compose"):
        assert f'"{marker}: ' in text
    assert "test-fast:" in (TESTS.parent / "Makefile").read_text()
