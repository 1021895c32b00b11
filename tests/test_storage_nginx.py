"""nginx's STORAGE=s3 image location (nginx/templates/store-s3.*.template) beside the local
one: the same headers, the same names, and a config that nginx accepts."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from scripts import nginxconf
from scripts.pgcluster import free_port
from scripts.stack import invoking_account
from server.formats import THUMB_SIDES, thumb_name
from tests.compose import compose_config

TEMPLATES = nginxconf.TEMPLATES_DIR
HEX = "0123456789abcdef" * 2


def location_blocks(text: str) -> dict[str, str]:
    """Each `location ~ "<regex>" { ... }` of a template, by its regex (no nested blocks
    other than one level, which is all these templates use)."""
    found = {}
    for match in re.finditer(r'location ~ "([^"]+)" \{((?:[^{}]|\{[^{}]*\})*)\}', text):
        found[match.group(1)] = match.group(2)
    return found


def headers_of(block: str) -> set[str]:
    return {line.strip() for line in block.splitlines() if line.strip().startswith("add_header")}


def test_objects_get_the_same_headers_as_files_from_disk() -> None:
    local = location_blocks((TEMPLATES / "default.conf.template").read_text())
    s3 = location_blocks((TEMPLATES / "store-s3.server.template").read_text())
    (s3_block,) = s3.values()
    image_locations = [block for regex, block in local.items() if regex.startswith("^/images/")]
    assert len(image_locations) == 2
    for block in image_locations:
        assert headers_of(block) <= headers_of(s3_block)
    extra = headers_of(s3_block) - set().union(*map(headers_of, image_locations))
    assert extra == {"add_header X-Cache-Status $upstream_cache_status always;"}


@pytest.mark.parametrize(
    ("path", "served"),
    [
        (f"/images/{HEX}.jpg", True),
        (f"/images/{HEX}.png", True),
        (f"/images/{HEX}.gif", True),
        *((f"/images/{thumb_name(HEX + '.png', side)}", True) for side in THUMB_SIDES),
        (f"/images/{HEX}.html", False),
        (f"/images/{HEX.upper()}.png", False),
        (f"/images/thumbs/{HEX}.png", False),
        (f"/images/thumbs/{HEX}-100.webp", False),
        (f"/images/../{HEX}.png", False),
        ("/images/", False),
    ],
)
def test_only_generated_names_reach_the_bucket(path: str, served: bool) -> None:
    (regex,) = location_blocks((TEMPLATES / "store-s3.server.template").read_text())
    assert bool(re.fullmatch(regex.replace("?<", "?P<"), path)) is served


def test_s3_variables_come_from_the_endpoint_url(tmp_path: Path) -> None:
    variables = nginxconf.s3_variables("https://s3.eu-central-1.amazonaws.com", "pics", tmp_path)
    assert variables["NGINX_S3_SERVER"] == "s3.eu-central-1.amazonaws.com:443"
    assert variables["NGINX_S3_SCHEME"] == "https"
    assert variables["NGINX_S3_HOST"] == "s3.eu-central-1.amazonaws.com"
    local = nginxconf.s3_variables("http://127.0.0.1:8333", "images", tmp_path)
    assert (local["NGINX_S3_SERVER"], local["NGINX_S3_HOST"]) == ("127.0.0.1:8333",) * 2
    with pytest.raises(ValueError):
        nginxconf.s3_variables("seaweedfs:8333", "images", tmp_path)


@pytest.mark.stack
def test_the_s3_rendering_passes_nginx_t(tmp_path: Path) -> None:
    runtime = tmp_path / "nginx"
    main = nginxconf.write_native_config(
        runtime,
        {
            "NGINX_PORT": f"127.0.0.1:{free_port()}",
            "BACKEND_SERVERS": nginxconf.upstream_servers([("127.0.0.1", free_port())]),
            "IMAGES_DIR": str(tmp_path / "images"),
            "STATIC_DIR": str(nginxconf.REPO_ROOT / "static"),
            "STORAGE": "s3",
            **nginxconf.s3_variables(f"http://127.0.0.1:{free_port()}", "images", runtime / "c"),
        },
        user=invoking_account() if os.geteuid() == 0 else None,
    )
    for name in ("default.conf", "store-s3.http", "store-s3.server"):
        assert "${" not in (runtime / "conf.d" / name).read_text(), name
    result = subprocess.run(
        nginxconf.nginx_command(main, "-t"), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_s3_needs_its_variables(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NGINX_S3_SERVER"):
        nginxconf.write_native_config(
            tmp_path,
            {"NGINX_PORT": "1", "BACKEND_SERVERS": "", "IMAGES_DIR": "/", "STATIC_DIR": "/"}
            | {"STORAGE": "s3"},
        )


# -- docker-compose.s3.yml ----------------------------------------------------------------


@pytest.mark.compose
def test_the_compose_override_runs_seaweedfs_and_switches_backend_and_nginx(
    tmp_path: Path,
) -> None:
    model = compose_config(
        tmp_path, "docker-compose.yml", "docker-compose.s3.yml", S3_SECRET_ACCESS_KEY="k" * 40
    )
    services = model["services"]
    assert services["seaweedfs"]["image"].startswith("chrislusf/seaweedfs:")
    assert set(services["seaweedfs"]["networks"]) == {"store-network"}
    assert model["networks"]["store-network"]["internal"] is True
    assert "back-network" not in services["nginx"]["networks"]  # nginx never sees the database
    backend = services["backend"]["environment"]
    assert backend["STORAGE"] == "s3" and backend["S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
    assert backend["S3_SECRET_ACCESS_KEY"] == "k" * 40

    # nginx renders the S3 templates completely, from its own environment alone.
    environment = services["nginx"]["environment"]
    pattern = re.compile(environment["NGINX_ENVSUBST_FILTER"])
    defined = {name: value for name, value in environment.items() if pattern.search(name)}
    for name in ("default.conf", "store-s3.http", "store-s3.server"):
        text = (TEMPLATES / f"{name}.template").read_text()
        rendered = nginxconf.render_template(text, defined)
        assert "${" not in rendered.replace("${NGINX_MAX_BODY_SIZE}", ""), name
    assert "include conf.d/store-s3.server;" in nginxconf.render_template(
        (TEMPLATES / "default.conf.template").read_text(), defined
    )


@pytest.mark.compose
def test_the_compose_override_needs_the_secret_key(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="S3_SECRET_ACCESS_KEY"):
        compose_config(tmp_path, "docker-compose.yml", "docker-compose.s3.yml")
