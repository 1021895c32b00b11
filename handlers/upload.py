"""The upload page and the upload itself (one image per request, multipart field `file`)."""

from __future__ import annotations

import tornado.web
from tornado.httputil import HTTPInputError

from handlers.base import BaseHandler
from handlers.multipart import FormBody
from handlers.redirects import AddSlashHandler
from server.models import IncomingFile, Viewer

_TOKEN_HEADERS = ("X-Xsrftoken", "X-Csrftoken", "Authorization")


@tornado.web.stream_request_body
class UploadHandler(BaseHandler):
    """The body is kept in the chunks it arrives in, its part separators looked for as each
    chunk comes, and parsed where it lies (handlers/multipart.py: the file's bytes copied
    once), on the event loop, a little at a time. (Tornado's parser needs the body joined and
    copies it three more times, holding the GIL: on the loop that was several milliseconds
    per 5 MB upload, and on low-priority threads it held the loop up whenever such a thread
    was preempted while holding the GIL.) Tornado still caps the body (max_body_size).

    XSRF: a token sent in a header (what the upload page's script does), or an API bearer
    token, is checked before the body is read, as usual. A plain HTML form sends its token as
    the `_xsrf` field of the body, so that check waits until the body is parsed, and nothing
    is done with the upload before it passes."""

    _body: FormBody
    _form_parsed = False

    async def prepare(self) -> None:
        self._body = FormBody(self.request.headers.get("Content-Type", ""), self.request.headers)
        await super().prepare()

    def data_received(self, chunk: bytes) -> None:
        self._body.append(chunk)

    def check_xsrf_cookie(self) -> None:
        token_in_headers = any(name in self.request.headers for name in _TOKEN_HEADERS)
        if self.request.method == "POST" and not (token_in_headers or self._form_parsed):
            return  # checked again in post(), once the form field can be read
        super().check_xsrf_cookie()

    def get(self) -> None:
        self.render("upload.html")

    async def post(self) -> None:
        self._read_form()
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

    def _read_form(self) -> None:
        request = self.request
        body, self._body = self._body, FormBody("", request.headers)
        try:
            arguments, files = body.parse()
        except HTTPInputError as exc:
            raise tornado.web.HTTPError(400, "Invalid body: %s", exc) from exc
        finally:
            del body
        request.body_arguments = arguments
        for name, values in arguments.items():
            request.arguments.setdefault(name, []).extend(values)
        request.files = files
        self._form_parsed = True


routes = [
    (r"/upload/", UploadHandler),
    (r"/upload", AddSlashHandler, {"url": "/upload/"}),
]
