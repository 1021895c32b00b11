"""The upload page and the upload itself (one image per request, multipart field `file`)."""

from __future__ import annotations

import tornado.web
from tornado.httputil import HTTPFile, HTTPHeaders, HTTPInputError, parse_body_arguments

from handlers.base import BaseHandler
from handlers.redirects import AddSlashHandler
from server.models import IncomingFile, Viewer

_TOKEN_HEADERS = ("X-Xsrftoken", "X-Csrftoken", "Authorization")


def parse_form(
    content_type: str, chunks: list[bytes], headers: HTTPHeaders
) -> tuple[dict[str, list[bytes]], dict[str, list[HTTPFile]]]:
    """The form fields and files of a multipart body (blocking: run it in a thread)."""
    arguments: dict[str, list[bytes]] = {}
    files: dict[str, list[HTTPFile]] = {}
    parse_body_arguments(content_type, b"".join(chunks), arguments, files, headers)
    return arguments, files


@tornado.web.stream_request_body
class UploadHandler(BaseHandler):
    """The body is collected as it arrives and parsed in a worker thread: joining and
    splitting a 5 MB multipart body on the event loop held it for several milliseconds per
    upload, stalling every other request. Tornado still caps the body (max_body_size).

    XSRF: a token sent in a header (what the upload page's script does), or an API bearer
    token, is checked before the body is read, as usual. A plain HTML form sends its token as
    the `_xsrf` field of the body, so that check waits until the body is parsed, and nothing
    is done with the upload before it passes."""

    _chunks: list[bytes]
    _form_parsed = False

    async def prepare(self) -> None:
        self._chunks = []
        await super().prepare()

    def data_received(self, chunk: bytes) -> None:
        self._chunks.append(chunk)

    def check_xsrf_cookie(self) -> None:
        token_in_headers = any(name in self.request.headers for name in _TOKEN_HEADERS)
        if self.request.method == "POST" and not (token_in_headers or self._form_parsed):
            return  # checked again in post(), once the form field can be read
        super().check_xsrf_cookie()

    def get(self) -> None:
        self.render("upload.html")

    async def post(self) -> None:
        await self._read_form()
        self.check_xsrf_cookie()
        files = [IncomingFile(f.filename, f.body) for f in self.request.files.get("file", [])]
        owner_hash = self.ensure_owner_hash()
        written = await self.gallery.upload(files, owner_hash)
        self.remember_write(written.version)
        image = written.image
        self.set_status(201)
        if self.wants_json():
            self.finish(self.image_json(image, Viewer(owner_hash=owner_hash)))
        else:
            self.render(
                "uploaded.html",
                image=image,
                url=image.url(self.base_url),
            )

    async def _read_form(self) -> None:
        request = self.request
        chunks, self._chunks = self._chunks, []
        try:
            # CPU work (copying megabytes), on low-priority threads of this process.
            arguments, files = await self.image_workers.run_in_thread(
                parse_form, request.headers.get("Content-Type", ""), chunks, request.headers
            )
        except HTTPInputError as exc:
            raise tornado.web.HTTPError(400, "Invalid body: %s", exc) from exc
        finally:
            del chunks
        request.body_arguments = arguments
        for name, values in arguments.items():
            request.arguments.setdefault(name, []).extend(values)
        request.files = files
        self._form_parsed = True


routes = [
    (r"/upload/", UploadHandler),
    (r"/upload", AddSlashHandler, {"url": "/upload/"}),
]
