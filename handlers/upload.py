"""The upload page and the upload itself (one image per request, multipart field `file`)."""

from __future__ import annotations

import tornado.web

from handlers.base import BaseHandler
from server.models import IncomingFile, Viewer


class UploadHandler(BaseHandler):
    def get(self) -> None:
        self.render("upload.html")

    async def post(self) -> None:
        files = [IncomingFile(f.filename, f.body) for f in self.request.files.get("file", [])]
        owner_hash = self.ensure_owner_hash()
        image = await self.gallery.upload(files, owner_hash)
        self.set_status(201)
        if self.wants_json():
            self.finish(self.image_json(image, Viewer(owner_hash=owner_hash)))
        else:
            self.render(
                "uploaded.html",
                image=image,
                url=f"{self.base_url}/images/{image.filename}",
            )


routes = [
    (r"/upload/", UploadHandler),
    (r"/upload", tornado.web.RedirectHandler, {"url": "/upload/"}),
]
