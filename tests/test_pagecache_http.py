"""Read-your-writes over the real stack (nginx + 2 backends, each with its page cache): a
reload right after an upload or a delete shows it, whichever process answers. Each backend
is asked directly (both keep page 1 before the write) as well as through nginx."""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest

from tests.images import make_image
from tests.support import Browser, Stack

pytestmark = pytest.mark.stack

JSON = {"Accept": "application/json"}


def backend_urls(site: Stack) -> list[str]:
    """Each backend's own address, from the stack's log ("worker-1 ready on HOST:PORT")."""
    found = re.findall(r"worker-\d ready on ([\d.]+:\d+)", "".join(site.running.log))
    assert len(found) == 2, found
    return [f"http://{address}" for address in found]


def page_ids(browser: Browser, url: str, site: Stack) -> tuple[list[int], str]:
    try:
        data = browser.get(f"{url}/images/", headers=JSON).json()
        html = browser.get(f"{url}/images/").text
    except httpx.TransportError as exc:  # say which process and what the stack logged
        listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
        log = "".join(site.running.log[-40:])
        raise AssertionError(f"{url}: {exc!r}\nlistening:\n{listening}\nstack log:\n{log}") from exc
    return [image["id"] for image in data["images"]], html


def test_a_reload_right_after_a_write_is_never_stale_on_either_backend(
    site: Stack, browser: Browser
) -> None:
    backends = backend_urls(site)
    everywhere = [*backends, site.url, site.url]  # nginx alternates between the two
    for url in everywhere:  # every process keeps page 1 as it is now
        assert page_ids(browser, url, site)[0] == []
    expected: list[int] = []
    for n in range(4):
        writer = backends[n % 2]  # uploads on one process, reloads on both at once
        answer = browser.post(
            f"{writer}/upload/",
            files={"file": (f"{n}.png", make_image(), "image/png")},
            headers={"X-XSRFToken": browser.xsrf, **JSON},
        )
        assert answer.status_code == 201, answer.text
        version = answer.headers["X-Gallery-Version"]
        assert browser.cookies["seen"] == version
        expected.insert(0, answer.json()["id"])
        for url in everywhere:
            ids, html = page_ids(browser, url, site)
            assert ids == expected, (url, n)
            assert f'data-id="{expected[0]}"' in html
    for n, image_id in enumerate(list(expected)):
        gone = browser.delete(
            f"{backends[n % 2]}/delete/{image_id}",
            headers={"X-XSRFToken": browser.xsrf, **JSON},
        )
        assert gone.status_code == 204
        assert int(gone.headers["X-Gallery-Version"]) > int(version)
        expected.remove(image_id)
        for url in everywhere:
            ids, html = page_ids(browser, url, site)
            assert ids == expected, (url, n)
            assert f'data-id="{image_id}"' not in html
