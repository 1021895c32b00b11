"""Languages: every user-visible string has a Russian translation (the test fails on any
that is missing), the language follows Accept-Language and the switcher, and pages in
Russian carry no English left over."""

from __future__ import annotations

import ast
import csv
import re
from pathlib import Path

import httpx
import pytest

from handlers import base, i18n, share
from tests.images import make_image
from tests.support import Browser, Stack

REPO = Path(__file__).resolve().parent.parent
# Names that read the same in both languages.
SAME_IN_BOTH = {"HTML", "BBCode", "Markdown", "JPEG, PNG or GIF"}


def error_class_names() -> set[str]:
    tree = ast.parse((REPO / "server" / "errors.py").read_text())
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


def python_messages() -> set[str]:
    """Default messages of the domain errors, and every message they are raised with."""
    found: set[str] = set()
    errors = error_class_names()
    for path in [*(REPO / "server").glob("*.py"), *(REPO / "handlers").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "default_message" for t in node.targets
            ):
                found.add(ast.literal_eval(node.value))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in errors
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    return found


def template_messages() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "templates").glob("*.html"):
        found |= {
            m.replace('\\"', '"') for m in re.findall(r'_\("((?:[^"\\]|\\.)*)"\)', path.read_text())
        }
    return found


def status_titles() -> set[str]:
    return set(base._TITLE_FOR_STATUS.values()) | {base._DEFAULT_TITLE}


def all_messages() -> set[str]:
    return (
        python_messages()
        | template_messages()
        | set(i18n.JS_MESSAGES)
        | set(share.SHARE_FORMATS.values())
        | set(base._MESSAGE_FOR_STATUS.values())
        | {base._XSRF_MESSAGE, "Something went wrong on our side."}
        | status_titles()
    )


def russian() -> dict[str, str]:
    with (REPO / "locale" / "ru.csv").open(newline="", encoding="utf-8") as fh:
        return {row[0]: row[1] for row in csv.reader(fh) if row}


def test_every_message_has_a_russian_translation() -> None:
    catalog = russian()
    missing = sorted(all_messages() - set(catalog))
    assert not missing, "untranslated: " + "; ".join(missing)
    for english, translated in catalog.items():
        assert translated.strip(), english
        if english not in SAME_IN_BOTH:
            assert translated != english, f"not translated: {english}"
        fields = set(re.findall(r"\{\w+\}", english))
        assert fields == set(re.findall(r"\{\w+\}", translated)), english


def test_the_catalog_holds_nothing_stale() -> None:
    assert not sorted(set(russian()) - all_messages())


def test_scripts_only_use_messages_the_page_provides() -> None:
    for path in (REPO / "static" / "js").glob("*.js"):
        for message in re.findall(r'\bt\(\s*"((?:[^"\\]|\\.)*)"', path.read_text()):
            assert message in i18n.JS_MESSAGES, f"{path.name}: {message}"


def english_phrases() -> list[str]:
    """Catalog entries long enough that finding one in a Russian page means it was missed."""
    return [m for m in all_messages() if len(m) > 12 and "{" not in m]


@pytest.mark.parametrize("path", ["/", "/upload/", "/images/", "/view/{id}", "/nowhere"])
def test_russian_pages_have_no_english_left(site: Stack, browser: Browser, path: str) -> None:
    image = browser.upload("кот.png", make_image()).json()
    response = browser.get(path.format(id=image["id"]), headers={"Accept-Language": "ru-RU,ru"})
    # The scripts' message catalog is keyed by the English text: leave it out.
    page = re.sub(r'<script type="application/json" id="messages">.*?</script>', "", response.text)
    assert '<html lang="ru">' in page
    leftovers = [p for p in english_phrases() if p in page]
    assert not leftovers, leftovers


def test_language_follows_accept_language_then_the_switcher(site: Stack) -> None:
    with Browser(site.url) as client:
        english = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
        assert '<html lang="en">' in english.text
        russian_page = client.get("/", headers={"Accept-Language": "ru,en;q=0.5"})
        assert '<html lang="ru">' in russian_page.text
        switched = client.post(
            "/lang", data={"lang": "en", "next": "/images/", "_xsrf": client.xsrf}
        )
        assert switched.status_code == 302
        assert switched.headers["location"] == "/images/"
        again = client.get("/", headers={"Accept-Language": "ru"})
        assert '<html lang="en">' in again.text  # the cookie wins
        evil = client.post(
            "/lang", data={"lang": "ru", "next": "//evil.example/", "_xsrf": client.xsrf}
        )
        assert evil.headers["location"] == "/"


def test_errors_are_translated_for_json_clients_too(site: Stack) -> None:
    response = httpx.get(
        f"{site.url}/images/?page=0",
        headers={"Accept": "application/json", "Accept-Language": "ru"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == russian()["The page number must be a positive whole number."]


def test_sizes_are_written_the_russian_way() -> None:
    assert i18n.format_size(348365, "ru") == "340,2\u00a0КБ"
    assert i18n.format_size(348365, "en") == "340.2 KB"
    # From one MB on, MB: "2.5 MB", never "2,560.0 KB".
    assert i18n.format_size(2621440, "en") == "2.5 MB"
    assert i18n.format_size(2621440, "ru") == "2,5\u00a0МБ"
    assert i18n.format_size(1023 * 1024, "en") == "1,023.0 KB"
    assert i18n.format_size(1024 * 1024 - 1, "en") == "1.0 MB"
    assert i18n.format_size(1024 * 1024, "en") == "1.0 MB"
