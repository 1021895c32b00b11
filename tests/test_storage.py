"""server.storage: generated names, atomic writes that leave nothing behind on failure."""

from __future__ import annotations

import os
import stat

import pytest

from server.formats import STORED_NAME_RE
from server.storage import LocalImageStore


def names_of(store: LocalImageStore, kind: str) -> set[str]:
    return {entry.name for entry in store.scan() if entry.kind == kind}


def test_names_are_32_hex_chars_and_the_extension(store: LocalImageStore) -> None:
    names = {store.new_filename(".png") for _ in range(100)}
    assert len(names) == 100
    assert all(STORED_NAME_RE.fullmatch(name) for name in names)


def test_write_is_complete_world_readable_and_leaves_no_temp_file(store: LocalImageStore) -> None:
    name = store.new_filename(".jpg")
    store.write(name, b"abc" * 1000)
    path = store.path(name)
    assert path.read_bytes() == b"abc" * 1000
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert names_of(store, "temp") == set()
    assert names_of(store, "image") == {name}


def test_a_failed_write_leaves_neither_file_nor_temp_file(store: LocalImageStore) -> None:
    name = store.new_filename(".png")
    with pytest.raises(TypeError):
        store.write(name, "not bytes")  # type: ignore[arg-type]
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_a_write_that_cannot_be_renamed_leaves_nothing(store: LocalImageStore) -> None:
    name = store.new_filename(".png")
    store.path(name).mkdir()  # a directory in the way: os.replace fails
    with pytest.raises(OSError):
        store.write(name, b"data")
    assert names_of(store, "temp") == set()
    store.path(name).rmdir()


@pytest.mark.parametrize("bad", ["../x.png", "a.png", "/etc/passwd", "0" * 32 + ".exe", ""])
def test_only_generated_names_are_paths(store: LocalImageStore, bad: str) -> None:
    with pytest.raises(ValueError):
        store.path(bad)


def test_delete_reports_missing_files(store: LocalImageStore) -> None:
    name = store.new_filename(".gif")
    store.write(name, b"x")
    assert store.delete(name) is True
    assert store.delete(name) is False


def test_the_folder_is_readable_by_other_users(store: LocalImageStore) -> None:
    os.chmod(store.root, 0o700)
    store.ensure()
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o755
