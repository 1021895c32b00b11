"""handlers.multipart: the upload body parsed in place gives what Tornado's own parser gives,
fields, files and refusals alike, with the file's bytes copied out once."""

from __future__ import annotations

import random

import pytest
from tornado.httputil import HTTPFile, HTTPHeaders, HTTPInputError, parse_body_arguments

from handlers.multipart import MAX_PARTS, Chunks, parse_form

B = "b0undary"
CT = f"multipart/form-data; boundary={B}"


def part(headers: str, value: bytes) -> bytes:
    return f"--{B}\r\n{headers}\r\n\r\n".encode() + value + b"\r\n"


def end() -> bytes:
    return f"--{B}--\r\n".encode()


FILE = 'Content-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png'
XSRF = 'Content-Disposition: form-data; name="_xsrf"'

BODIES = {
    "a field and a file": part(XSRF, b"2|abc|def|1") + part(FILE, b"\x89PNG\r\n" * 50) + end(),
    "a value holding CRLFs and dashes": part(FILE, b"--\r\n\r\n--b0undar\r\n") + end(),
    "an RFC 2231 file name": part(
        "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''%D1%84.png", b"x"
    )
    + end(),
    "two files": part(FILE, b"one") + part(FILE, b"two") + end(),
    "an empty value": part(FILE, b"") + end(),
    "headers and no value at all": f"--{B}\r\n{FILE}\r\n\r\n".encode() + end(),
    "a preamble": b"ignored?\r\n" + part(FILE, b"x") + end(),
    "no final boundary": part(FILE, b"x"),
    "a part without headers": f"--{B}\r\nno headers here\r\n".encode() + end(),
    "a part not ending in CRLF": f"--{B}\r\n{FILE}\r\n\r\nx".encode() + end(),
    "no name": part('Content-Disposition: form-data; filename="a.png"', b"x") + end(),
    "not form-data": part('Content-Disposition: attachment; name="file"', b"x") + end(),
    "headers that are not UTF-8": part(FILE + "\r\nX-Odd: ", b"").replace(
        b"X-Odd: ", b"X-Odd: \xff\xfe"
    )
    + end(),
    "too many parts": part(XSRF, b"1") * MAX_PARTS + end(),
    "as many parts as allowed": part(XSRF, b"1") * (MAX_PARTS - 1) + end(),
    "a header too large": part(FILE + "\r\nX-Big: " + "a" * 11000, b"x") + end(),
}


def tornado_parse(content_type: str, body: bytes) -> object:
    arguments: dict[str, list[bytes]] = {}
    files: dict[str, list[HTTPFile]] = {}
    try:
        parse_body_arguments(content_type, body, arguments, files, HTTPHeaders())
    except HTTPInputError:
        return HTTPInputError
    return arguments, files


def split(body: bytes, seed: int) -> list[bytes]:
    """`body` in pieces of 0 to 40 bytes, as a stream might deliver it."""
    rng = random.Random(seed)
    pieces, at = [], 0
    while at < len(body):
        size = rng.randint(0, 40)
        pieces.append(body[at : at + size])
        at += size
    return pieces


def ours(content_type: str, body: bytes, seed: int | None = None) -> object:
    try:
        chunks = [body] if seed is None else split(body, seed)
        return parse_form(content_type, chunks, HTTPHeaders())
    except HTTPInputError:
        return HTTPInputError


@pytest.mark.parametrize("name", list(BODIES))
def test_the_same_as_tornado_whole_and_in_pieces(name: str) -> None:
    body = BODIES[name]
    expected = tornado_parse(CT, body)
    assert ours(CT, body) == expected
    for seed in range(5):
        assert ours(CT, body, seed) == expected, seed


def test_chunks_find_and_copy_as_one_byte_string() -> None:
    rng = random.Random(7)
    for _ in range(300):
        data = bytes(rng.choice(b"ab-\r\n") for _ in range(rng.randint(0, 120)))
        body = Chunks(split(data, rng.randint(0, 10**6)))
        needle = bytes(rng.choice(b"ab-\r\n") for _ in range(rng.randint(1, 6)))
        start, stop = sorted(rng.randint(0, len(data) + 2) for _ in range(2))
        assert body.find(needle, start, stop) == data.find(needle, start, stop)
        assert body.find(needle) == data.find(needle)
        assert body.rfind(needle) == data.rfind(needle)
        assert body[start:stop] == data[start:stop]


@pytest.mark.parametrize(
    "content_type",
    [
        f'multipart/form-data; boundary="{B}"',
        f"multipart/form-data; charset=utf-8; boundary={B}",
        "multipart/form-data; boundary=another",
        "multipart/form-data",
        "multipart/form-dataxyz; boundary=" + B,
    ],
)
def test_content_types_as_tornado_reads_them(content_type: str) -> None:
    body = BODIES["a field and a file"]
    assert ours(content_type, body) == tornado_parse(content_type, body)


def test_a_file_comes_out_as_its_own_bytes() -> None:
    value = bytes(range(256)) * 100
    arguments, files = parse_form(
        CT, split(part(XSRF, b"tok") + part(FILE, value) + end(), 1), HTTPHeaders()
    )
    assert arguments == {"_xsrf": [b"tok"]}
    (file,) = files["file"]
    assert (file.filename, file.content_type, file.body) == ("a.png", "image/png", value)
    assert type(file.body) is bytes


def test_other_bodies_carry_no_form_and_an_encoded_one_is_refused() -> None:
    for content_type in ("application/octet-stream", "text/plain", ""):
        assert parse_form(content_type, [b"x=1"], HTTPHeaders()) == ({}, {})
    # An upload is multipart: a urlencoded body carries no file (the upload then says so).
    assert parse_form("application/x-www-form-urlencoded", [b"x=1"], HTTPHeaders()) == (
        {},
        {},
    )
    with pytest.raises(HTTPInputError):
        parse_form(CT, [BODIES["a field and a file"]], HTTPHeaders({"Content-Encoding": "gzip"}))
