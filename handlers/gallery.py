"""The gallery (12 per page, newest first), one image's view page, and delete."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from tornado.escape import json_encode, utf8, xhtml_escape

from handlers.base import BaseHandler
from handlers.redirects import AddSlashHandler
from handlers.services import image_json
from server import formats
from server.gallery import parse_page_number
from server.models import GalleryPage, Image

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

# Bodies kept per gallery page, one per kind of viewer (language and admin or not for HTML,
# the site's address for JSON, and which tiles they may delete): past this many, the oldest
# is dropped. With server.pagecache keeping at most CACHED_PAGES pages (and a page only
# until the next event or for a second), that caps what they hold at 16 x 16 bodies of
# 12-20 KB each, about 5 MB per process at worst.
RENDERINGS_PER_PAGE = 16

T = TypeVar("T")


def kept(renderings: dict[Any, Any], key: tuple[Any, ...], make: Callable[[], T]) -> T:
    """`renderings[key]`, made on first use; the oldest is dropped past RENDERINGS_PER_PAGE."""
    try:
        return renderings[key]
    except KeyError:
        pass
    value = make()
    if len(renderings) >= RENDERINGS_PER_PAGE:
        del renderings[next(iter(renderings))]
    renderings[key] = value
    return value


@dataclass(frozen=True, slots=True)
class PageBody:
    """A rendered page with holes where each request puts its own XSRF token (masked afresh
    every time, so never shared between requests) and its address. The templates render
    the holes' markers in place of those values; the markers are random per process, so no
    image name can contain one."""

    XSRF_HOLE = f"xsrf{secrets.token_hex(16)}"
    URI_HOLE = f"uri{secrets.token_hex(16)}"

    parts: tuple[bytes, ...]  # text, hole, text, hole, ..., text: odd places are holes
    holes: tuple[int, ...]  # per hole: 0 for the XSRF token, 1 for the address

    @classmethod
    def of(cls, rendered: bytes) -> PageBody:
        pieces = _HOLES.split(rendered)
        holes = tuple(0 if marker == _XSRF_MARK else 1 for marker in pieces[1::2])
        return cls(tuple(pieces), holes)

    def fill(self, xsrf: bytes, uri: bytes) -> bytes:
        values = (xsrf, uri)
        parts = list(self.parts)
        for place, hole in enumerate(self.holes):
            parts[2 * place + 1] = values[hole]
        return b"".join(parts)


_XSRF_MARK = PageBody.XSRF_HOLE.encode()
_HOLES = re.compile(b"(" + _XSRF_MARK + b"|" + PageBody.URI_HOLE.encode() + b")")


def _image_json_text(image: Image, base_url: str, can_delete: bool) -> str:
    return json_encode(image_json(image, base_url, can_delete))


class GalleryHandler(BaseHandler):
    """Page N of the gallery. Its body is made once per kind of viewer for as long as the
    page is kept (`GalleryPage.renderings`, forgotten with the page on the next event): a
    request only finds the body for its language and for which tiles it may delete, and
    fills in its own XSRF token and address (`PageBody`)."""

    _etag: str | None = None

    async def get(self) -> None:
        number = parse_page_number(self.get_query_argument("page", None))
        page = await self.gallery.page(number, self.seen_version())
        viewer = self.viewer
        deletable = tuple(viewer.can_delete(image) for image in page.images)
        if self.wants_json():
            base_url = self.base_url
            body, self._etag = kept(
                page.renderings,
                ("json", base_url, deletable),
                lambda: self._page_json(page, base_url, deletable),
            )
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(body)
        else:
            code = self.locale.code
            made = kept(
                page.renderings,
                ("html", code, viewer.is_admin, deletable),
                lambda: self._page_html(page, code, deletable),
            )
            self.finish(made.fill(self.xsrf_token, utf8(xhtml_escape(self.request.uri))))

    def compute_etag(self) -> str | None:
        """JSON: the hash of the kept body, made with it. HTML: none, as no two gallery pages
        are alike (each carries its freshly masked XSRF token), so an ETag could never
        match; hashing 16 KB for it was 4% of a request."""
        return self._etag

    def _page_json(
        self, page: GalleryPage, base_url: str, deletable: tuple[bool, ...]
    ) -> tuple[bytes, str]:
        tiles = self.rendered_tiles
        images = ", ".join(
            tiles.get(
                ("json", image, base_url, can_delete),
                functools.partial(_image_json_text, image, base_url, can_delete),
            )
            for image, can_delete in zip(page.images, deletable, strict=True)
        )
        # What json_encode wrote for the whole dict, with each image's part made once.
        body = utf8(
            f'{{"page": {page.page}, "pages": {page.pages}, "per_page": {page.per_page}, '
            f'"total": {page.total}, "images": [{images}]}}'
        )
        return body, f'"{hashlib.sha1(body).hexdigest()}"'

    def _page_html(self, page: GalleryPage, code: str, deletable: tuple[bool, ...]) -> PageBody:
        tiles = self.rendered_tiles
        html = [
            tiles.get(
                ("html", image, code, can_delete),
                functools.partial(
                    self.render_string, "_tile.html", image=image, can_delete=can_delete
                ),
            )
            for image, can_delete in zip(page.images, deletable, strict=True)
        ]
        return PageBody.of(
            self.render_string(
                "gallery.html",
                page=page,
                tiles_html=html,
                tile_template_image=_TILE_TEMPLATE_IMAGE,
                xsrf_value=PageBody.XSRF_HOLE,
                current_uri=PageBody.URI_HOLE,
            )
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
