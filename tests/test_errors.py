"""The error funnel (handlers/base.py), in process: every domain error class is pinned to its
HTTP status, and each comes out as one JSON shape or one HTML page. A domain error the table
does not know is a 500 with the same shapes, never an empty response."""

from __future__ import annotations

import html
import inspect

import pytest

from handlers.base import BaseHandler
from server import errors
from server.errors import ImageHostingError
from tests.support import InProcessApp

# Written out on purpose: a changed status must be a deliberate edit here too.
STATUS = {
    errors.ImageHostingError: 500,
    errors.InvalidUpload: 400,
    errors.InvalidPage: 400,
    errors.UploadTooLarge: 413,
    errors.ImageTooManyPixels: 413,
    errors.UnsupportedImage: 415,
    errors.NotFound: 404,
    errors.ImageNotFound: 404,
    errors.PageNotFound: 404,
    errors.NotAuthenticated: 401,
    errors.NotAllowed: 403,
    errors.ServiceUnavailable: 503,
}
GENERIC_MESSAGE = "Something went wrong on our side."
XSRF_MESSAGE = "Your form expired or came from another site. Reload the page and try again."


class UnmappedError(ImageHostingError):
    """A domain error someone added without giving it a status."""

    default_message = "This text is for a status that does not exist."


RAISABLE = {cls.__name__: cls for cls in [*STATUS, UnmappedError]}


class RaiseHandler(BaseHandler):
    def get(self, name: str) -> None:
        raise RAISABLE[name]()


@pytest.fixture(scope="module")
def raising_app(app: InProcessApp) -> InProcessApp:
    app.application.add_handlers(r".*", [(r"/test-raise/(\w+)", RaiseHandler)])
    return app


def expected(cls: type[ImageHostingError]) -> tuple[int, str]:
    status = STATUS.get(cls, 500)
    return status, GENERIC_MESSAGE if status == 500 else cls.default_message


def test_every_domain_error_is_pinned() -> None:
    defined = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, ImageHostingError)
    }
    assert defined == set(STATUS)


@pytest.mark.parametrize("cls", [*STATUS, UnmappedError], ids=lambda cls: cls.__name__)
async def test_json_clients_get_the_status_and_one_error_field(
    raising_app: InProcessApp, cls: type[ImageHostingError]
) -> None:
    status, message = expected(cls)
    async with raising_app.client() as client:
        response = await client.get(
            f"/test-raise/{cls.__name__}", headers={"Accept": "application/json"}
        )
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": message}


@pytest.mark.parametrize("cls", [*STATUS, UnmappedError], ids=lambda cls: cls.__name__)
async def test_browsers_get_the_status_and_the_error_page(
    raising_app: InProcessApp, cls: type[ImageHostingError]
) -> None:
    status, message = expected(cls)
    async with raising_app.client() as client:
        response = await client.get(f"/test-raise/{cls.__name__}", headers={"Accept": "text/html"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert '<section class="error-page">' in response.text
    assert f'<p class="error-message">{html.escape(message)}</p>' in response.text
    assert "Traceback" not in response.text


async def test_errors_tornado_raises_itself_use_the_same_shapes(app: InProcessApp) -> None:
    async with app.client() as client:
        wrong_method = await client.get("/delete/1", headers={"Accept": "application/json"})
        no_token = await client.post("/lang", headers={"Accept": "application/json"})
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "This address does not accept that kind of request."}
    assert no_token.status_code == 403
    assert no_token.json() == {"error": XSRF_MESSAGE}
