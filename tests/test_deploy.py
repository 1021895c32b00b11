"""Deployment files, validated offline with the real tools: the Compose models
(`docker-compose config`), the Dockerfile (hadolint), and the nginx template (rendered the way
the official image renders it, checked by `nginx -t`, then served by a real nginx)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts import nginxconf
from scripts.pgcluster import free_port
from scripts.stack import invoking_account
from server.config import Config
from tests import dockerfile
from tests.compose import compose_config, tool
from tests.support import running_nginx

# The Compose files, the Dockerfile and the nginx template they ship (nginx runs: also stack).
pytestmark = pytest.mark.compose

REPO = Path(__file__).resolve().parent.parent
IMAGE_NAME = "0123456789abcdef0123456789abcdef"


# -- docker compose -----------------------------------------------------------------------


@pytest.fixture
def compose(tmp_path: Path) -> dict[str, Any]:
    # "_dir" lets assertions compare resolved host paths with the folder the model came from.
    return compose_config(tmp_path, "docker-compose.yml") | {"_dir": tmp_path}


@pytest.fixture
def backup_compose(tmp_path: Path) -> dict[str, Any]:
    return compose_config(tmp_path, "auto_backup_compose.yml") | {"_dir": tmp_path}


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, str, bool]]:
    """target → (type, source, read_only)"""
    return {
        m["target"]: (m["type"], m["source"], bool(m.get("read_only")))
        for m in service.get("volumes", [])
    }


def test_compose_has_the_three_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"db", "backend", "nginx"}
    db = services["db"]
    assert db["container_name"] == "db"
    assert db["image"] == "postgres:16"
    assert db["environment"]["POSTGRES_DB"] == "images_db"
    assert db["environment"]["POSTGRES_USER"] == "postgres"
    # Both built from the one context (the Dockerfile's two stages): nginx's static/ is the
    # backend's, so ?v= hashes always match the files served.
    assert services["backend"]["build"] == {
        "context": str(compose["_dir"]),
        "dockerfile": "Dockerfile",
        "target": "backend",
    }
    assert services["nginx"]["build"]["context"] == str(compose["_dir"])
    assert services["nginx"]["build"]["target"] == "nginx"


def test_compose_backend_stops_gracefully(compose: dict[str, Any]) -> None:
    backend = compose["services"]["backend"]
    assert backend["init"] is True
    # The app drains requests for up to 10 s after SIGTERM; Docker kills at the grace period.
    assert backend["stop_grace_period"].endswith("s")
    assert int(backend["stop_grace_period"][:-1]) > 10


def test_compose_publish_address_is_a_setting(tmp_path: Path) -> None:
    model = compose_config(tmp_path, "docker-compose.yml", NGINX_PUBLISH="127.0.0.1:8080")
    [port] = model["services"]["nginx"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8080", 80)


def test_compose_publishes_only_nginx_on_8080(compose: dict[str, Any]) -> None:
    services = compose["services"]
    ports = services["nginx"]["ports"]
    assert [(p["published"], p["target"], p["protocol"]) for p in ports] == [("8080", 80, "tcp")]
    assert "ports" not in services["backend"]
    assert "ports" not in services["db"]
    assert services["backend"]["expose"] == ["8000"]


def test_compose_networks_keep_the_database_internal(compose: dict[str, Any]) -> None:
    networks = compose["networks"]
    assert set(networks) == {"front-network", "back-network"}
    assert networks["back-network"].get("internal") is True
    assert not networks["front-network"].get("internal")
    joined = {name: set(svc["networks"]) for name, svc in compose["services"].items()}
    assert joined == {
        "nginx": {"front-network"},
        "backend": {"front-network", "back-network"},
        "db": {"back-network"},
    }


def test_compose_volumes(compose: dict[str, Any]) -> None:
    assert set(compose["volumes"]) == {"images", "db-data"}
    services = compose["services"]
    # backup.sh reaches the database through `docker exec`: db needs no backups/ mount.
    assert mounts(services["db"]) == {"/var/lib/postgresql/data": ("volume", "db-data", False)}
    assert mounts(services["backend"]) == {"/images": ("volume", "images", False)}
    # nginx's config, template and static files are in its image (Dockerfile stage `nginx`).
    assert mounts(services["nginx"]) == {"/images": ("volume", "images", True)}


def test_compose_healthchecks_and_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["backend"]["healthcheck"]["test"])
    assert services["backend"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["nginx"]["depends_on"]["backend"]["condition"] == "service_healthy"


def test_compose_backend_settings_default_without_env_file(compose: dict[str, Any]) -> None:
    env = compose["services"]["backend"]["environment"]
    # The password travels apart from the URL (libpq's PGPASSWORD).
    assert env["DATABASE_URL"] == "postgresql://postgres@db:5432/images_db"
    assert env["PGPASSWORD"] == "postgres"
    assert env["IMAGES_DIR"] == "/images"
    assert env["HOST"] == "0.0.0.0"
    assert env["PORT"] == "8000"
    assert env["LOG_LEVEL"] == "INFO"


def test_compose_takes_settings_from_the_environment(tmp_path: Path) -> None:
    password = "a@b/c:d%e f"  # what `openssl rand -base64` may make, and worse
    model = compose_config(tmp_path, "docker-compose.yml", POSTGRES_PASSWORD=password)
    env = model["services"]["backend"]["environment"]
    assert env["DATABASE_URL"] == "postgresql://postgres@db:5432/images_db"
    assert env["PGPASSWORD"] == password
    assert model["services"]["db"]["environment"]["POSTGRES_PASSWORD"] == password


def test_compose_passes_the_security_settings_on(tmp_path: Path) -> None:
    """Failed before: ALLOWED_HOSTS in .env never reached the backend under Compose."""
    model = compose_config(
        tmp_path, "docker-compose.yml", ALLOWED_HOSTS="pics.example", NGINX_WS_PER_IP="7"
    )
    assert model["services"]["backend"]["environment"]["ALLOWED_HOSTS"] == "pics.example"
    assert model["services"]["nginx"]["environment"]["NGINX_WS_PER_IP"] == "7"


def test_backup_compose_adds_a_scheduled_backup(backup_compose: dict[str, Any]) -> None:
    services = backup_compose["services"]
    assert set(services) == {"db", "backend", "nginx", "backup"}
    backup = services["backup"]
    assert backup["image"].startswith("prodrigestivill/postgres-backup-local")
    env = backup["environment"]
    assert env["SCHEDULE"] == "@daily"
    assert env["BACKUP_KEEP_DAYS"] == "7"
    assert env["POSTGRES_HOST"] == "db"
    assert env["POSTGRES_DB"] == "images_db"
    assert mounts(backup) == {"/backups": ("bind", str(backup_compose["_dir"] / "backups"), False)}
    assert set(backup["networks"]) == {"back-network"}
    # Its dumps are private too: the image's script inherits the umask.
    assert backup["command"][-1].startswith("umask 077 && exec ")
    assert backup["depends_on"]["db"]["condition"] == "service_healthy"


def test_backup_schedule_and_retention_are_configurable(tmp_path: Path) -> None:
    model = compose_config(
        tmp_path, "auto_backup_compose.yml", BACKUP_SCHEDULE="@hourly", BACKUP_KEEP_DAYS="3"
    )
    env = model["services"]["backup"]["environment"]
    assert (env["SCHEDULE"], env["BACKUP_KEEP_DAYS"]) == ("@hourly", "3")


# -- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_the_backend_as_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[2-9]", text, re.M)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert 'CMD ["python", "-m", "server"]' in text
    assert "HEALTHCHECK" in text and "/healthz" in text


# -- nginx template -----------------------------------------------------------------------


def official_image_render(environment: dict[str, str]) -> str:
    """What the nginx image's entrypoint writes: envsubst over the variables defined in its
    environment whose names match NGINX_ENVSUBST_FILTER (everything when unset)."""
    # Before rendering, the entrypoint sources the *.envsh hooks the Dockerfile puts in the image.
    sourced = subprocess.run(
        [
            "sh",
            "-c",
            '. "$0" && printf %s "$NGINX_MAX_BODY_SIZE"',
            REPO / "nginx/upload-limit.envsh",
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    environment = environment | {"NGINX_MAX_BODY_SIZE": sourced.stdout}
    name_filter = re.compile(environment.get("NGINX_ENVSUBST_FILTER", ""))
    defined = {k: v for k, v in environment.items() if name_filter.search(k)}
    return nginxconf.render_template(nginxconf.TEMPLATE_PATH.read_text(), defined)


def test_template_uses_only_documented_variables() -> None:
    text = nginxconf.TEMPLATE_PATH.read_text()
    # nginx's own variables are lower case; upper case ones are ours, for envsubst.
    ours = {name for name in nginxconf.referenced_variables(text) if not name.islower()}
    assert ours == set(nginxconf.TEMPLATE_VARIABLES)


def test_compose_gives_nginx_every_template_variable(compose: dict[str, Any]) -> None:
    environment = compose["services"]["nginx"]["environment"]
    # The image's own environment is defined there too; none of it may leak into the config.
    image_env = {"PATH": "/usr/sbin:/usr/bin", "HOME": "/root", "NGINX_VERSION": "1.27.5"}
    rendered = official_image_render(image_env | environment)
    assert "${" not in rendered
    # The backend is looked up per request through Docker's DNS (scaled, recreated).
    assert "default backend:8000;" in rendered
    assert "resolver 127.0.0.11 valid=10s" in rendered
    assert "proxy_pass http://$backend_target;" in rendered
    assert "listen 80 default_server;" in rendered
    assert "alias /images/$image_file;" in rendered
    assert "$http_upgrade" in rendered and "$connection_upgrade" in rendered
    assert f"client_max_body_size {Config.from_env({}).max_body_bytes};" in rendered


def test_renderer_matches_gnu_envsubst() -> None:
    """scripts/local-stack and the image must produce the same file from the same values."""
    values = {
        "NGINX_PORT": "8080",
        "BACKEND": "backend:8000",
        "NGINX_RESOLVER": "127.0.0.11",
        "IMAGES_DIR": "/srv/images",
        "STATIC_DIR": "/srv/static",
    }
    shell_format = " ".join(f"${{{name}}}" for name in values)
    template = nginxconf.TEMPLATE_PATH.read_text()
    result = subprocess.run(
        [shutil.which("envsubst") or "envsubst", shell_format],
        input=template,
        env={"PATH": os.environ["PATH"], **values},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert nginxconf.render_template(template, values) == result.stdout


def test_render_template_replaces_only_given_names() -> None:
    text = "a ${A} $A ${B} $host $A_B ${A}x $$A"
    assert nginxconf.render_template(text, {"A": "1"}) == "a 1 1 ${B} $host $A_B 1x $1"


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / f"{IMAGE_NAME}.png").write_bytes(b"\x89PNG\r\n\x1a\nnot-really")
    (folder / f"{IMAGE_NAME}.html").write_text("<script>alert(1)</script>")
    return folder


def native_config(
    runtime_dir: Path, images_dir: Path, port: int, backend_port: int, trusted: str = ""
) -> Path:
    return nginxconf.write_native_config(
        runtime_dir,
        {
            "NGINX_PORT": f"127.0.0.1:{port}",
            "BACKEND_SERVERS": nginxconf.upstream_servers([("127.0.0.1", backend_port)]),
            "IMAGES_DIR": str(images_dir),
            "STATIC_DIR": str(REPO / "static"),
            "NGINX_TRUSTED_PROXIES": trusted,
        },
        user=invoking_account() if os.geteuid() == 0 else None,
    )


@pytest.mark.stack
def test_rendered_template_passes_nginx_t(tmp_path: Path, images_dir: Path) -> None:
    main = native_config(tmp_path / "nginx", images_dir, free_port(), free_port())
    site = (tmp_path / "nginx" / "conf.d" / "default.conf").read_text()
    assert "${" not in site
    result = subprocess.run(
        nginxconf.nginx_command(main, "-t"), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.fixture
def trusted_proxies() -> str:
    return ""


@pytest.fixture
def nginx_without_backend(
    tmp_path: Path, images_dir: Path, trusted_proxies: str
) -> Iterator[httpx.Client]:
    """A real nginx from the template whose only backend is a port nobody listens on."""
    port = free_port()
    main = native_config(tmp_path / "nginx", images_dir, port, free_port(), trusted_proxies)
    url = f"http://127.0.0.1:{port}"
    with running_nginx(main, url), httpx.Client(base_url=url, timeout=10) as client:
        yield client


def test_nginx_serves_generated_image_names_from_disk(nginx_without_backend: httpx.Client) -> None:
    response = nginx_without_backend.get(f"/images/{IMAGE_NAME}.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["server"] == "nginx"  # server_tokens off: no version
    # Sent whole whatever the Range (no 206 and no 416 with a second set of headers).
    for ranges in ("bytes=0-9", f"bytes={len(response.content)}-"):
        whole = nginx_without_backend.get(f"/images/{IMAGE_NAME}.png", headers={"Range": ranges})
        assert (whole.status_code, whole.content) == (200, response.content)


@pytest.mark.parametrize(
    "path",
    [
        f"/images/{IMAGE_NAME}.html",  # a file on disk, but not a name the server generates
        f"/images/{IMAGE_NAME.upper()}.png",
        f"/images/{IMAGE_NAME}.png/",
        "/images/",
    ],
)
def test_nginx_hands_other_image_paths_to_the_backend(
    nginx_without_backend: httpx.Client, path: str
) -> None:
    # The backend is down, so "handed to the backend" shows as nginx's 502 page.
    response = nginx_without_backend.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 502
    assert "error" in response.json()


def test_nginx_error_pages_follow_the_accept_header(nginx_without_backend: httpx.Client) -> None:
    as_json = nginx_without_backend.get("/", headers={"Accept": "application/json"})
    assert as_json.status_code == 502
    assert as_json.headers["content-type"].startswith("application/json")
    assert set(as_json.json()) == {"error"}
    as_html = nginx_without_backend.get("/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert as_html.status_code == 502
    assert as_html.headers["content-type"].startswith("text/html")
    assert "<h1>" in as_html.text


def test_nginx_refuses_bodies_over_six_megabytes(nginx_without_backend: httpx.Client) -> None:
    body = b"x" * (6 * 1024 * 1024 + 1)
    response = nginx_without_backend.post(
        "/upload/", content=body, headers={"Accept": "application/json"}
    )
    assert response.status_code == 413
    assert "5 MB" in response.json()["error"]


def test_nginx_serves_static_files_and_hides_internal_pages(
    nginx_without_backend: httpx.Client,
) -> None:
    response = nginx_without_backend.get("/static/errors/errors.css?v=abc")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "max-age" in response.headers["cache-control"]
    # The error pages are server-side includes, run only when nginx answers an error.
    for raw in ("/static/errors/413.html", "/static/errors/_page.html", "/static/errors/404.json"):
        refused = nginx_without_backend.get(raw)
        assert refused.status_code == 404 and "<!--#" not in refused.text, raw
    # /_errors/ is internal: a direct request goes nowhere near the files.
    assert nginx_without_backend.get("/_errors/413.json").status_code == 404
    assert nginx_without_backend.get("/static/errors/").status_code == 403  # no autoindex


def test_nginx_compresses_text_not_images(nginx_without_backend: httpx.Client) -> None:
    gzip = {"Accept-Encoding": "gzip"}
    css = nginx_without_backend.get("/static/css/site.css", headers=gzip)
    assert css.status_code == 200
    assert css.headers["content-encoding"] == "gzip"
    assert "body" in css.text  # httpx decodes it: the body is intact
    image = nginx_without_backend.get(f"/images/{IMAGE_NAME}.png", headers=gzip)
    assert "content-encoding" not in image.headers


def test_shipped_nginx_conf_holds_a_thousand_live_sockets() -> None:
    """README promises 1,000 live tabs; each proxied WebSocket holds two connections."""
    text = nginxconf.MAIN_CONFIG_PATH.read_text()
    connections = int(re.search(r"worker_connections\s+(\d+);", text).group(1))
    assert connections >= 2 * 1000 + 100
    assert int(re.search(r"worker_rlimit_nofile\s+(\d+);", text).group(1)) >= connections


def logged_client(client: httpx.Client, nginx_dir: Path, headers: dict[str, str]) -> str:
    """The client address nginx logs for one request carrying `headers`."""
    probe = secrets.token_hex(8)
    client.get(f"/static/errors/errors.css?{probe}", headers=headers)
    log = nginx_dir / "logs" / "access.log"
    for _ in range(100):  # nginx writes the line after sending the response
        lines = [line for line in log.read_text().splitlines() if probe in line]
        if lines:
            return lines[0].split()[0]
        time.sleep(0.05)
    raise AssertionError("the request was not logged")


@pytest.mark.parametrize("trusted_proxies", ["127.0.0.1"])
def test_nginx_trusts_forwarded_for_from_listed_proxies(
    nginx_without_backend: httpx.Client, tmp_path: Path
) -> None:
    forwarded = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    # Logged (and rate limited) as the last address before the trusted proxy.
    assert logged_client(nginx_without_backend, tmp_path / "nginx", forwarded) == "203.0.113.9"


def test_nginx_ignores_forwarded_for_by_default(
    nginx_without_backend: httpx.Client, tmp_path: Path
) -> None:
    forwarded = {"X-Forwarded-For": "6.6.6.6"}
    assert logged_client(nginx_without_backend, tmp_path / "nginx", forwarded) == "127.0.0.1"


def test_trusted_proxies_refuse_anything_but_addresses(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an address or CIDR range: 1.2.3.4;"):
        nginxconf.write_trusted_proxies(tmp_path, "10.0.0.0/8 1.2.3.4;include")
    assert not (tmp_path / "trusted-proxies.conf").exists()


# -- the images folder as a bind mount --------------------------------------------------------

APP_UID = 10001  # the Dockerfile's USER


def ensure_as_app_user(folder: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from pathlib import Path; from server.storage import LocalImageStore;"
        " LocalImageStore(Path(sys.argv[1])).ensure()"
    )
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={APP_UID}",
            f"--regid={APP_UID}",
            "--clear-groups",
            sys.executable,
            "-c",
            code,
            str(folder),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def root_owned_folder() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to act as the container's uid 10001 (CI and our machines are root)")
    folder = Path(tempfile.mkdtemp(prefix="ih-bind-", dir="/tmp"))
    os.chmod(folder, 0o755)
    try:
        yield folder / "images"
    finally:
        shutil.rmtree(folder)


def test_backend_starts_on_a_writable_bind_mount_it_does_not_own(root_owned_folder: Path) -> None:
    root_owned_folder.mkdir()
    os.chmod(root_owned_folder, 0o777)  # a host folder opened up for the container
    result = ensure_as_app_user(root_owned_folder)
    assert result.returncode == 0, result.stderr
    assert (root_owned_folder / "thumbs").stat().st_uid == APP_UID


def test_backend_says_what_to_do_on_a_read_only_bind_mount(root_owned_folder: Path) -> None:
    root_owned_folder.mkdir()  # root's, 0755: uid 10001 cannot write
    result = ensure_as_app_user(root_owned_folder)
    assert result.returncode != 0
    assert f"not writable by uid {APP_UID}" in result.stderr
    assert "chown -R 10001" in result.stderr


# -- the Docker workflow ----------------------------------------------------------------------

WORKFLOW = REPO / ".github" / "workflows" / "compose.yml"


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("actionlint"), "-no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_compose_workflow_passes_actionlint(tmp_path: Path) -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    # The check can fail: a matrix value that does not exist is an error.
    broken = tmp_path / "compose.yml"
    broken.write_text(
        WORKFLOW.read_text().replace(
            "BACKENDS: ${{ matrix.backends", "BACKENDS: ${{ matrix.backend"
        )
    )
    assert actionlint(broken).returncode != 0


def test_the_workflow_runs_the_readme_commands_and_the_shared_smoke_script() -> None:
    text = WORKFLOW.read_text()
    for command in (
        "docker compose up --build --wait",
        'python scripts/smoke.py "$SITE"',
        "bash backup.sh",
        'docker exec -i db psql -U postgres images_db < "$DUMP"',
        "docker compose -f auto_backup_compose.yml config",
        "docker compose down -v",
        "--scale backend=${BACKENDS}",
    ):
        assert command in text, command
    assert re.search(r"backends: \[1, 3\]", text)
    # The README's restore line is the one the workflow runs.
    assert (
        "docker exec -i db psql -U postgres images_db < backups/"
        in (REPO / "README.md").read_text()
    )


def test_the_build_context_leaves_out_local_and_heavy_folders() -> None:
    """What .dockerignore keeps out of `docker build`'s context, read by Docker's rules."""
    rules = dockerfile.ignore_rules(REPO)
    for path in (
        "node_modules/x/index.js",
        "docs/BENCHMARKS.md",
        "bench/load.py",
        "data/images/a.png",
        ".data/nginx/x",
        ".venv/bin/python",
        "backups/images_db_x.sql",
        ".git/HEAD",
        "server/__pycache__/app.cpython-312.pyc",
        ".env",
    ):
        assert dockerfile.is_ignored(path, rules), path
    for path in ("server/app.py", "locale/ru.csv", "nginx/nginx.conf", "static/css/site.css"):
        assert not dockerfile.is_ignored(path, rules), path


def test_the_template_states_the_backends_ping_interval() -> None:
    from server.app import WEBSOCKET_PING_SECONDS

    stated = re.search(r"pings every (\d+) s", nginxconf.TEMPLATE_PATH.read_text())
    assert stated is not None and int(stated[1]) == WEBSOCKET_PING_SECONDS
