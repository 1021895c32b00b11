"""The gallery (12 per page, newest first), one image's view page, and delete."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.redirects import AddSlashHandler
from server.gallery import parse_page_number

# Ids fit PostgreSQL's bigint; longer digit strings are simply unknown addresses.
_ID = r"([0-9]{1,18})"


class GalleryHandler(BaseHandler):
    async def get(self) -> None:
        page = await self.gallery.page(parse_page_number(self.get_query_argument("page", None)))
        if self.wants_json():
            viewer = self.viewer
            self.finish(
                {
                    "page": page.page,
                    "pages": page.pages,
                    "per_page": page.per_page,
                    "total": page.total,
                    "images": [self.image_json(image, viewer) for image in page.images],
                }
            )
        else:
            self.render("gallery.html", page=page, viewer=self.viewer)


class ImageViewHandler(BaseHandler):
    async def get(self, image_id: str) -> None:
        image = await self.gallery.get(int(image_id))
        if self.wants_json():
            self.finish(self.image_json(image))
            return
        newer, older = await self.gallery.neighbours(image.id)
        self.render(
            "view.html",
            image=image,
            url=f"{self.base_url}/images/{image.filename}",
            viewer=self.viewer,
            newer=newer,
            older=older,
        )


class DeleteHandler(BaseHandler):
    async def delete(self, image_id: str) -> None:
        await self.gallery.delete(int(image_id), self.viewer)
        self.set_status(204)
        self.finish()


routes = [
    (r"/images/", GalleryHandler),
    (r"/images", AddSlashHandler, {"url": "/images/"}),
    (rf"/view/{_ID}", ImageViewHandler),
    (rf"/delete/{_ID}", DeleteHandler),
]
