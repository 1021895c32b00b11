"""server/formats.py is the one list of formats and stored names: the copies that cannot
import it (nginx's templates for local files and object storage, the backup scripts, the
Compose hook for nginx's body cap) are checked against it here, and so is what it derives."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from server import formats
from server.config import MULTIPART_MARGIN, Config

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = (REPO / "nginx" / "templates" / "default.conf.template").read_text()


def location_block(pattern_start: str) -> str:
    start = TEMPLATE.index(f'location ~ "^/images/{pattern_start}')
    return TEMPLATE[start : TEMPLATE.index("\n    }", start)]


def test_nginx_serves_exactly_the_stored_image_names() -> None:
    block = location_block("(?<image_file>")
    served = re.search(r'"\^/images/\(\?<image_file>(.*)\)\$"', block)
    assert served is not None
    assert served.group(1) == formats.STORED_NAME_PATTERN
    types = dict(re.findall(r"(image/\w+)\s+(\w+);", block))
    assert types == {
        formats.MEDIA_TYPE[fmt]: ext.removeprefix(".")
        for fmt, ext in formats.STORED_EXTENSION.items()
    }


def test_nginx_serves_exactly_the_thumbnail_names() -> None:
    block = location_block("thumbs/")
    served = re.search(r"\(\?<thumb_file>\[0-9a-f\]\{(\d+)\}-\(\?:([0-9|]+)\)\\\.webp\)", block)
    assert served is not None
    assert int(served.group(1)) == formats.NAME_HEX_DIGITS
    assert tuple(int(side) for side in served.group(2).split("|")) == formats.THUMB_SIDES


def test_nginx_reads_exactly_the_stored_names_from_object_storage() -> None:
    text = (REPO / "nginx" / "templates" / "store-s3.server.template").read_text()
    served = re.search(
        r'"\^/images/\(\?<image_key>(.*)\|thumbs/\[0-9a-f\]\{(\d+)\}-\(\?:([0-9|]+)\)\\\.webp\)\$"',
        text,
    )
    assert served is not None
    assert served.group(1) == formats.STORED_NAME_PATTERN
    assert int(served.group(2)) == formats.NAME_HEX_DIGITS
    assert tuple(int(side) for side in served.group(3).split("|")) == formats.THUMB_SIDES


def test_backups_take_exactly_the_stored_names() -> None:
    script = (REPO / "scripts" / "backup-common.sh").read_text()
    image_ere = re.search(r"^IMAGE_NAME_ERE='(.*)'$", script, re.M)
    assert image_ere is not None
    pattern = re.compile(image_ere.group(1))  # this ERE means the same in Python
    for stem in ("0" * formats.NAME_HEX_DIGITS, "a" * formats.NAME_HEX_DIGITS):
        for name in formats.stored_names_of_stem(stem):
            assert pattern.fullmatch(name), name
    for name in ("0" * 32 + ".jpeg", "0" * 31 + ".png", "0" * 32 + ".webp", "G" * 32 + ".gif"):
        assert not pattern.fullmatch(name) and not formats.STORED_NAME_RE.fullmatch(name)


def test_the_compose_hook_computes_nginx_body_cap_like_the_app() -> None:
    for megabytes in ("1", "5", "40"):
        result = subprocess.run(
            [
                "sh",
                "-c",
                '. "$0" && printf %s "$NGINX_MAX_BODY_SIZE"',
                REPO / "nginx/upload-limit.envsh",
            ],
            env={"MAX_UPLOAD_MB": megabytes, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        assert int(result.stdout) == Config.from_env({"MAX_UPLOAD_MB": megabytes}).max_body_bytes
    assert MULTIPART_MARGIN == 2048


def test_names_and_helpers_agree() -> None:
    for fmt, ext in formats.STORED_EXTENSION.items():
        assert ext in formats.ACCEPTED_EXTENSIONS
        assert formats.extension_for_media_type()[formats.MEDIA_TYPE[fmt]] == ext
        assert formats.STORED_NAME_RE.fullmatch("f" * formats.NAME_HEX_DIGITS + ext)
    name = "f" * formats.NAME_HEX_DIGITS + ".png"
    for side in formats.THUMB_SIDES:
        thumb = formats.thumb_name(name, side)
        folder, _, file = thumb.partition("/")
        assert folder == formats.THUMBS_DIR
        match = formats.THUMB_NAME_RE.fullmatch(file)
        assert match is not None and match.group(1) == "f" * formats.NAME_HEX_DIGITS
    assert formats.is_accepted_name("HOLIDAY.JPEG") and not formats.is_accepted_name("a.webp")
