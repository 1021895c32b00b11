"""A multipart/form-data body parsed where it lies, in the chunks it arrived in: the parts are
found by index, and a file's bytes are copied out once.

Tornado's own parser (`tornado.httputil.parse_body_arguments`) needs the body joined, then
copies it three more times (the slice before the final boundary, the split into parts, the
value of each part) while holding the GIL; run on a thread beside the event loop, those
copies of a 5 MB upload held the loop up (measured with py-spy: the parse threads held the
GIL about as long as the loop did, see docs/BENCHMARKS.md). Here the separators are found
with `find` in the chunks (`Chunks`, no copy) and only the file's bytes are copied, once, so
the parse is cheap enough for the event loop itself.

Each part's headers still go through Tornado's parser (a copy of the part with an empty
value), so names, file names (RFC 2231 included), content types and every refusal of a
malformed part are Tornado's.
"""

from __future__ import annotations

import bisect

from tornado.httputil import HTTPFile, HTTPHeaders, HTTPInputError, parse_multipart_form_data

# Tornado's defaults (tornado.httputil.ParseMultipartConfig).
MAX_PARTS = 100
MAX_PART_HEADER_SIZE = 10 * 1024


class Chunks:
    """Byte strings read as one, without joining them: `find`, `rfind` and copies of a range."""

    def __init__(self, chunks: list[bytes] | None = None) -> None:
        self._chunks: list[bytes] = []
        self._offsets = [0]
        self.size = 0
        for chunk in chunks or ():
            self.append(chunk)

    def append(self, chunk: bytes) -> None:
        if chunk:
            self._chunks.append(chunk)
            self.size += len(chunk)
            self._offsets.append(self.size)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, where: slice) -> bytes:
        """A copy of `where` (a slice with no step), made in one join."""
        start, stop, _step = where.indices(self.size)
        if start >= stop:
            return b""
        first = bisect.bisect_right(self._offsets, start) - 1
        pieces = []
        for index in range(first, len(self._chunks)):
            offset = self._offsets[index]
            if offset >= stop:
                break
            chunk = self._chunks[index]
            lo, hi = max(start - offset, 0), min(stop - offset, len(chunk))
            pieces.append(chunk if (lo, hi) == (0, len(chunk)) else memoryview(chunk)[lo:hi])
        # bytes(a bytes object) is that object; bytes(a memoryview) is a copy of its range.
        return bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)

    def _seam(self, index: int, needle: bytes) -> tuple[int, bytes]:
        """Where the bytes around the end of chunk `index` start, and those bytes: every
        place a `needle` that starts in this chunk's last bytes and ends in a later one."""
        end = self._offsets[index + 1]
        start = max(self._offsets[index], end - len(needle) + 1)
        return start, self[start : end + len(needle) - 1]

    def find(self, needle: bytes, start: int = 0, stop: int | None = None) -> int:
        """The first `needle` wholly inside [start, stop), as `bytes.find`; -1 if none."""
        stop = self.size if stop is None else min(stop, self.size)
        first = bisect.bisect_right(self._offsets, start) - 1
        for index in range(max(first, 0), len(self._chunks)):
            offset = self._offsets[index]
            if offset >= stop:
                break
            chunk = self._chunks[index]
            found = chunk.find(needle, max(start - offset, 0), min(stop - offset, len(chunk)))
            if found != -1:
                return offset + found
            seam_start, seam = self._seam(index, needle)
            lo = max(start - seam_start, 0)
            found = seam.find(needle, lo, stop - seam_start)
            if found != -1 and seam_start + found < self._offsets[index + 1]:
                return seam_start + found
        return -1

    def rfind(self, needle: bytes) -> int:
        """The last `needle` in the whole body, as `bytes.rfind`; -1 if none."""
        for index in reversed(range(len(self._chunks))):
            seam_start, seam = self._seam(index, needle)
            # Only needles that start in this chunk (later ones were looked for already).
            found = seam.rfind(needle, 0, self._offsets[index + 1] - seam_start + len(needle) - 1)
            if found != -1:
                return seam_start + found
            found = self._chunks[index].rfind(needle)
            if found != -1:
                return self._offsets[index] + found
        return -1


def _boundary(content_type: str, headers: HTTPHeaders) -> bytes:
    if "Content-Encoding" in headers:
        raise HTTPInputError(f"Unsupported Content-Encoding: {headers['Content-Encoding']}")
    fields = content_type.split(";")
    if fields[0].strip() != "multipart/form-data":
        raise HTTPInputError("Invalid content type")
    for field in fields[1:]:
        key, _sep, value = field.strip().partition("=")
        if key == "boundary" and value:
            if len(value) > 1 and value.startswith('"') and value.endswith('"'):
                value = value[1:-1]
            return value.encode()
    raise HTTPInputError("multipart boundary not found")


class FormBody:
    """A request body as it streams in (`append` each chunk), then its form (`parse`). For a
    multipart body the part separators are looked for as the chunks arrive, so what is left
    for `parse` is the headers of each part and one copy of each value."""

    def __init__(self, content_type: str, headers: HTTPHeaders) -> None:
        self.chunks = Chunks()
        self._multipart = content_type.startswith("multipart/form-data")
        self._error: HTTPInputError | None = None
        self._boundary = b""
        if self._multipart:
            try:
                self._boundary = _boundary(content_type, headers)
            except HTTPInputError as exc:
                self._error = exc
        self._separator = b"--" + self._boundary + b"\r\n"
        self._separators: list[int] = []  # where each one starts, in order
        self._searched = 0  # no separator starts before this that is not in the list

    def append(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        if not self._multipart or self._error or len(self._separators) > MAX_PARTS:
            return
        separator = self._separator
        while (found := self.chunks.find(separator, self._searched)) != -1:
            self._separators.append(found)
            self._searched = found + len(separator)
            if len(self._separators) > MAX_PARTS:
                return  # enough to refuse the body, if they all come before its end
        self._searched = max(self._searched, self.chunks.size - len(separator) + 1)

    def parse(self) -> tuple[dict[str, list[bytes]], dict[str, list[HTTPFile]]]:
        """The form fields and files. Any body but a multipart one has none (an upload is
        multipart). Raises HTTPInputError for a malformed multipart body."""
        arguments: dict[str, list[bytes]] = {}
        files: dict[str, list[HTTPFile]] = {}
        if not self._multipart:
            return arguments, files
        if self._error:
            raise self._error
        body, boundary, separator = self.chunks, self._boundary, self._separator
        final = body.rfind(b"--" + boundary + b"--")
        if final == -1:
            raise HTTPInputError("Invalid multipart/form-data: no final boundary found")
        # The parts lie between separators (what lies before the first one counts too, as
        # in Tornado), the last one up to the final boundary.
        before_end = [s for s in self._separators if s + len(separator) <= final]
        if len(before_end) >= MAX_PARTS:
            raise HTTPInputError("multipart/form-data has too many parts")
        starts = [0] + [s + len(separator) for s in before_end]
        ends = [*before_end, final]
        for start, end in zip(starts, ends, strict=True):
            if start >= end:
                continue
            eoh = body.find(b"\r\n\r\n", start, end)
            if eoh == -1:
                raise HTTPInputError("multipart/form-data missing headers")
            if eoh - start > MAX_PART_HEADER_SIZE:
                raise HTTPInputError("multipart/form-data part header too large")
            if body[end - 2 : end] != b"\r\n":
                raise HTTPInputError("Invalid multipart/form-data")
            name, file = _part_headers(boundary, body[start:eoh])
            value = body[eoh + 4 : end - 2]
            if file is None:
                arguments.setdefault(name, []).append(value)
            else:
                files.setdefault(name, []).append(
                    HTTPFile(filename=file.filename, body=value, content_type=file.content_type)
                )
        return arguments, files


def _part_headers(boundary: bytes, head: bytes) -> tuple[str, HTTPFile | None]:
    """A part's name, and its file (with an empty body) when it is one: its headers parsed
    by Tornado, as a part of its own with an empty value."""
    separator = b"--" + boundary + b"\r\n"
    arguments: dict[str, list[bytes]] = {}
    files: dict[str, list[HTTPFile]] = {}
    try:
        parse_multipart_form_data(
            boundary, separator + head + b"\r\n\r\n\r\n--" + boundary + b"--", arguments, files
        )
    except HTTPInputError:
        raise
    except Exception as exc:  # e.g. headers that are not UTF-8
        raise HTTPInputError(f"Invalid multipart/form-data: {exc}") from exc
    for name, (file,) in files.items():
        return name, file
    for name in arguments:
        return name, None
    raise HTTPInputError("multipart/form-data part without a name")


def parse_form(
    content_type: str, chunks: list[bytes], headers: HTTPHeaders
) -> tuple[dict[str, list[bytes]], dict[str, list[HTTPFile]]]:
    """`FormBody.parse` of a body that arrived as `chunks`."""
    body = FormBody(content_type, headers)
    for chunk in chunks:
        body.append(chunk)
    return body.parse()
