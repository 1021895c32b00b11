"""The gallery (12 per page, newest first), one image's view page, and delete."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from handlers.base import BaseHandler
from handlers.redirects import AddSlashHandler
from handlers.services import image_json
from server import formats
from server.gallery import parse_page_number
from server.models import Image

# Ids fit PostgreSQL's bigint; longer digit strings are simply unknown addresses.
_ID = r"([0-9]{1,18})"
# Rendered through _tile.html into the gallery's <template> with every part a tile can have
# (a thumbnail, a delete button); gallery.js fills in a live upload's values.
_TILE_TEMPLATE_IMAGE = Image(
    id=0,
    filename="0" * formats.NAME_HEX_DIGITS + formats.STORED_EXTENSION["PNG"],
    original_name="",
    size=0,
    width=1,
    height=1,
    format="PNG",
    owner_hash="",
    uploaded_at=datetime.fromtimestamp(0, UTC),
    thumb_width=1,
    thumb_height=1,
)


class GalleryHandler(BaseHandler):
    async def get(self) -> None:
        number = parse_page_number(self.get_query_argument("page", None))
        page = await self.gallery.page(number, self.seen_version())
        viewer = self.viewer
        tiles = self.rendered_tiles
        if self.wants_json():
            base_url = self.base_url
            images = []
            for image in page.images:
                can_delete = viewer.can_delete(image)
                images.append(
                    tiles.get(
                        ("json", image, base_url, can_delete),
                        functools.partial(image_json, image, base_url, can_delete),
                    )
                )
            self.finish(
                {
                    "page": page.page,
                    "pages": page.pages,
                    "per_page": page.per_page,
                    "total": page.total,
                    "images": images,
                }
            )
        else:
            code = self.locale.code
            html = []
            for image in page.images:
                can_delete = viewer.can_delete(image)
                html.append(
                    tiles.get(
                        ("html", image, code, can_delete),
                        functools.partial(
                            self.render_string, "_tile.html", image=image, can_delete=can_delete
                        ),
                    )
                )
            self.render(
                "gallery.html",
                page=page,
                tiles_html=html,
                tile_template_image=_TILE_TEMPLATE_IMAGE,
            )


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
            url=image.url(self.base_url),
            viewer=self.viewer,
            newer=newer,
            older=older,
        )


class DeleteHandler(BaseHandler):
    async def delete(self, image_id: str) -> None:
        self.remember_write(await self.gallery.delete(int(image_id), self.viewer))
        self.set_status(204)
        self.finish()


routes = [
    (r"/images/", GalleryHandler),
    (r"/images", AddSlashHandler, {"url": "/images/"}),
    (rf"/view/{_ID}", ImageViewHandler),
    (rf"/delete/{_ID}", DeleteHandler),
]
