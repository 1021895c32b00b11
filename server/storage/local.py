"""STORAGE=local: image files under the images folder (IMAGES_DIR), written atomically
(a temp file renamed into place), deleted with their thumbnails."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

from server.formats import (
    STORED_NAME_RE,
    THUMB_NAME_RE,
    THUMB_SIDES,
    THUMBS_DIR,
    thumb_name,
)
from server.models import Thumbnail
from server.storage.base import Entry, new_filename

TEMP_PREFIX = ".tmp-"


def _not_writable(folder: Path) -> str:
    return (
        f"the images folder {folder} is not writable by uid {os.geteuid()}: give that uid the"
        f" folder (chown -R {os.geteuid()} on the host, for a bind mount) or point IMAGES_DIR"
        " elsewhere"
    )


class LocalImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def usable(self) -> bool:
        """Does the images folder exist? (`check` refuses to compare against none.)"""
        return self.root.is_dir()

    def ensure(self) -> None:
        """Create the folders if missing; fail with what to do when they are not writable."""
        for folder in (self.root, self.root / THUMBS_DIR):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except PermissionError as exc:
                raise PermissionError(_not_writable(folder)) from exc
            if not os.access(folder, os.W_OK | os.X_OK):
                raise PermissionError(_not_writable(folder))
            # nginx runs as another user: it needs to list nothing, only open files by name.
            # Only the owner may chmod; a folder someone else made wide enough is fine as it is
            # (a bind mount, say), and one too narrow is what the owner must fix.
            mode = folder.stat().st_mode & 0o7777
            if mode & 0o755 != 0o755:
                try:
                    folder.chmod(mode | 0o755)
                except PermissionError as exc:
                    raise PermissionError(
                        f"{folder} has mode {mode:o}: nginx (another account) cannot read the"
                        f" files in it; chmod 755 it (its owner or root)"
                    ) from exc

    new_filename = staticmethod(new_filename)

    def path(self, filename: str) -> Path:
        if not STORED_NAME_RE.fullmatch(filename):
            raise ValueError(f"not a stored image name: {filename!r}")
        return self.root / filename

    def write(self, filename: str, data: bytes) -> None:
        """Write all of `data` under `filename` or nothing: a temp file renamed into place."""
        self._write_atomically(self.path(filename), data)

    def _write_atomically(self, final: Path, data: bytes) -> None:
        temp = self.root / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(temp, 0o644)  # the umask may have narrowed it; nginx must read it
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def write_upload(self, filename: str, data: bytes, thumbnails: Iterable[Thumbnail]) -> None:
        """The image and its thumbnails, all of them or nothing."""
        self.write(filename, data)
        try:
            self.write_thumbnails(filename, thumbnails)  # removes its own on failure
        except BaseException:
            self.path(filename).unlink(missing_ok=True)
            raise

    def delete(self, filename: str) -> bool:
        """Remove the image, then its thumbnails; False when the image file was already gone."""
        try:
            self.path(filename).unlink()
        except FileNotFoundError:
            existed = False
        else:
            existed = True
        self.delete_thumbnails(filename)
        return existed

    def exists(self, filename: str) -> bool:
        return self.path(filename).is_file()

    def read(self, name: str) -> bytes:
        """An image's or a thumbnail's bytes (FileNotFoundError when it has none)."""
        return self._entry_path(name).read_bytes()

    def put(self, name: str, data: bytes) -> None:
        """Write one image or thumbnail by its name in the store, atomically."""
        path = self._entry_path(name)
        if path.parent != self.root:
            path.parent.mkdir(exist_ok=True)
            os.chmod(path.parent, 0o755)
        self._write_atomically(path, data)

    def size(self, name: str) -> int | None:
        try:
            return self._entry_path(name).stat().st_size
        except FileNotFoundError:
            return None

    def _entry_path(self, name: str) -> Path:
        thumb = name.removeprefix(f"{THUMBS_DIR}/")
        if name.startswith(f"{THUMBS_DIR}/") and THUMB_NAME_RE.fullmatch(thumb):
            return self.root / THUMBS_DIR / thumb
        return self.path(name)

    def thumb_path(self, filename: str, side: int) -> Path:
        self.path(filename)  # only generated image names have thumbnails
        return self.root / thumb_name(filename, side)

    def write_thumbnails(self, filename: str, thumbnails: Iterable[Thumbnail]) -> None:
        """All of them or none. Each is atomic like `write`: its temp file sits in the images
        folder (where leftovers are looked for) and is renamed into the thumbnails folder."""
        folder = self.root / THUMBS_DIR
        if not folder.is_dir():  # e.g. an images folder restored from an older backup
            folder.mkdir(exist_ok=True)
            os.chmod(folder, 0o755)
        try:
            for thumbnail in thumbnails:
                self._write_atomically(self.thumb_path(filename, thumbnail.side), thumbnail.data)
        except BaseException:
            self.delete_thumbnails(filename)
            raise

    def delete_thumbnails(self, filename: str) -> int:
        """Remove every thumbnail of `filename`; returns how many there were."""
        removed = 0
        for side in THUMB_SIDES:
            try:
                self.thumb_path(filename, side).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def has_thumbnails(self, filename: str) -> bool:
        return all(self.thumb_path(filename, side).is_file() for side in THUMB_SIDES)

    def scan(self) -> Iterator[Entry]:
        """Every file of the folder and of its thumbnails folder, one at a time, without a
        stat call each (blocking: drive it from a thread). Other subfolders are skipped."""
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    continue
                if entry.name.startswith(TEMP_PREFIX):
                    yield Entry("temp", entry.name)
                elif STORED_NAME_RE.fullmatch(entry.name):
                    yield Entry("image", entry.name)
                else:
                    yield Entry("other", entry.name)
        try:
            thumbnails = os.scandir(self.root / THUMBS_DIR)
        except FileNotFoundError:
            return
        with thumbnails as entries:
            for entry in entries:
                kind = "thumbnail" if THUMB_NAME_RE.fullmatch(entry.name) else "other"
                yield Entry(kind, f"{THUMBS_DIR}/{entry.name}")

    def has_any_image(self) -> bool:
        with os.scandir(self.root) as entries:
            return any(STORED_NAME_RE.fullmatch(entry.name) for entry in entries)

    def missing(self, filenames: Iterable[str]) -> list[str]:
        """Those of `filenames` that have no file."""
        return [
            name
            for name in filenames
            if not STORED_NAME_RE.fullmatch(name) or not (self.root / name).is_file()
        ]

    def modified_at(self, entry: Entry) -> float | None:
        """When the entry's file last changed (epoch seconds); None when it is gone."""
        try:
            return (self.root / entry.name).stat().st_mtime
        except FileNotFoundError:
            return None

    def delete_thumbnail_file(self, name: str) -> bool:
        """Remove one file of the thumbnails folder by name (with or without the folder);
        False when it was already gone."""
        name = name.removeprefix(f"{THUMBS_DIR}/")
        if not THUMB_NAME_RE.fullmatch(name):
            raise ValueError(f"not a thumbnail name: {name!r}")
        try:
            (self.root / THUMBS_DIR / name).unlink()
        except FileNotFoundError:
            return False
        return True

    def delete_temp_file(self, name: str) -> bool:
        """Remove a leftover temp file by name; False when it was already gone."""
        if not name.startswith(TEMP_PREFIX) or "/" in name or name in (".", ".."):
            raise ValueError(f"not a temp file name: {name!r}")
        try:
            (self.root / name).unlink()
        except FileNotFoundError:
            return False
        return True
