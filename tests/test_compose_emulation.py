"""The Compose tier: docker-compose.yml's services run the way their containers run, without
Docker, and the site is used through nginx on port 80 as a visitor would use it.

The services come from `docker-compose config --format json`, the images' files from the
Dockerfile itself (tests/dockerfile.py), and each container is started as its image starts it
(tests/emulated_images.py), in a private network and mount namespace (tests/emulation.py):
database initialised by the postgres image's rules with a password full of URL characters,
the backend as uid 10001 with exactly Compose's environment, nginx with the nginx.conf and
templates its image holds, rendered by the image's envsubst rules. Every healthcheck must pass;
then scripts/smoke.py, backup.sh in Compose mode and the README's restore run against it, with
a `docker` command that enters the containers (tests/emulated_docker.py).

What only the Docker workflow (.github/workflows/compose.yml) proves: the base images
themselves (python:3.12-slim with requirements.txt pip-installed, postgres 16, nginx 1.27 and
busybox wget — this machine's Python virtualenv, PostgreSQL 15, nginx 1.22 and GNU wget stand
in), Docker's own networking, DNS, published port 8080, restart policies and init.

The mutation tests at the bottom show the tier can fail: a missing COPY line, a healthcheck
that cannot run, and the password pasted into DATABASE_URL each break it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import dockerfile
from tests.compose import compose_config
from tests.emulated_images import EmulatedStack, start_order
from tests.emulation import Container, EmulationError

pytestmark = pytest.mark.compose

REPO = Path(__file__).resolve().parent.parent
# What `openssl rand -base64` may produce, and worse: each breaks a password inside a URL.
PASSWORD = "p@ss/w:rd%2F+="
PROXY = "127.0.0.1"  # nginx trusts X-Forwarded-For from here (NGINX_TRUSTED_PROXIES)


def problems(stack: EmulatedStack) -> list[str]:
    """Everything the tier checks on a started stack; empty when the site works."""
    found = []
    for container in stack.containers.values():
        if container.running:
            check = stack.healthcheck(container)
            if check.returncode != 0:
                found.append(f"{container.name}: healthcheck: {check.stdout}{check.stderr}")
    smoke = stack.host_run([sys.executable, str(REPO / "scripts" / "smoke.py"), "http://127.0.0.1"])
    if smoke.returncode != 0:
        found.append(f"smoke: {smoke.stderr.strip()}")
    if one(stack, "nginx").env.get("NGINX_TRUSTED_PROXIES"):
        seen = visitor_seen_through_proxy(stack)
        if seen != "198.51.100.7":
            found.append(f"nginx logs {seen} for a visitor behind the trusted proxy")
    return found


def visitor_seen_through_proxy(stack: EmulatedStack) -> str:
    """The client address nginx logs for a request from the trusted proxy on behalf of
    198.51.100.7 (its access log is the container's output, as in the image)."""
    probe = uuid.uuid4().hex
    fetch = (
        "import urllib.request as u; u.urlopen(u.Request("
        f"'http://{PROXY}/static/css/site.css?{probe}',"
        " headers={'X-Forwarded-For': '198.51.100.7'}), timeout=30).read()"
    )
    if stack.host_run([sys.executable, "-c", fetch]).returncode != 0:
        return "(request failed)"
    nginx = one(stack, "nginx")
    for _ in range(50):  # the line is written after the response
        lines = [line for line in nginx.output().splitlines() if probe in line]
        if lines:
            return lines[0].split()[0]
        time.sleep(0.1)
    return "(not logged)"


@pytest.fixture(scope="module")
def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the emulation needs root (unshare, chroot); CI and our machines are root")


def emulated(tmp_path_factory: pytest.TempPathFactory, **env: str) -> tuple[dict[str, Any], Path]:
    model = compose_config(tmp_path_factory.mktemp("model"), "docker-compose.yml", **env)
    # Not pytest's tmp_path: every container's user must pass through its parent folders.
    workdir = Path(tempfile.mkdtemp(prefix="ih-compose-", dir="/tmp"))
    workdir.chmod(0o755)
    return model, workdir


@pytest.fixture(scope="module")
def stack(needs_root: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedStack]:
    model, workdir = emulated(
        tmp_path_factory, POSTGRES_PASSWORD=PASSWORD, NGINX_TRUSTED_PROXIES=PROXY
    )
    try:
        with EmulatedStack(model, workdir) as running:
            for service in start_order(model):
                running.up(service)
            yield running
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def smoke_run(stack: EmulatedStack) -> subprocess.CompletedProcess[str]:
    return stack.host_run([sys.executable, str(REPO / "scripts" / "smoke.py"), "http://127.0.0.1"])


def one(stack: EmulatedStack, service: str) -> Container:
    [container] = [c for c in stack.containers.values() if c.service == service and c.running]
    return container


def test_every_service_starts_and_passes_its_healthcheck(stack: EmulatedStack) -> None:
    assert [c.service for c in stack.containers.values()] == ["db", "backend", "nginx"]
    for container in stack.containers.values():
        result = stack.healthcheck(container)
        assert result.returncode == 0, (container.name, result.stdout, result.stderr)
    backend = one(stack, "backend")
    # The Dockerfile's own HEALTHCHECK (used by `docker run`) passes too.
    stage = dockerfile.stage(REPO / "Dockerfile", "backend")
    assert stage.healthcheck is not None
    assert stack.healthcheck(backend, stage.healthcheck).returncode == 0
    # As the Dockerfile's uid, with Compose's DATABASE_URL untouched (no password in it).
    assert backend.process is not None
    status = Path(f"/proc/{backend.process.pid}/status").read_text()
    assert "\nUid:\t10001\t10001\t10001\t10001\n" in status
    environ = Path(f"/proc/{backend.process.pid}/environ").read_bytes().split(b"\0")
    assert b"DATABASE_URL=postgresql://postgres@db:5432/images_db" in environ


def test_nginx_runs_the_shipped_configuration(stack: EmulatedStack) -> None:
    nginx = one(stack, "nginx")
    shipped = stack.exec(nginx, ["cat", "/etc/nginx/nginx.conf"])
    assert shipped.stdout == (REPO / "nginx" / "nginx.conf").read_text()
    site = stack.exec(nginx, ["cat", "/etc/nginx/conf.d/default.conf"]).stdout
    assert "${" not in site and "resolver 127.0.0.11 valid=10s" in site


def test_the_site_works_through_nginx_on_port_80(
    smoke_run: subprocess.CompletedProcess[str],
) -> None:
    """Home, static (the backend's hash), upload with XSRF, direct link, gallery JSON,
    WebSocket image.created, delete: scripts/smoke.py, the Docker workflow's script too."""
    assert smoke_run.returncode == 0, smoke_run.stderr
    assert smoke_run.stdout.strip().isdigit()


def test_nginx_sees_visitors_behind_a_trusted_proxy(stack: EmulatedStack) -> None:
    assert visitor_seen_through_proxy(stack) == "198.51.100.7"


def test_backup_sh_and_the_readme_restore(
    stack: EmulatedStack, smoke_run: subprocess.CompletedProcess[str]
) -> None:
    kept = smoke_run.stdout.strip()
    backups = stack.dir / "backups"
    made = stack.host_run(["bash", str(REPO / "backup.sh"), "--dir", str(backups)])
    assert made.returncode == 0, made.stderr
    dump, archive = (Path(line) for line in made.stdout.split())
    assert {oct(p.stat().st_mode & 0o777) for p in (dump, archive)} == {oct(0o600)}

    # Lose everything: the rows and the files.
    db = one(stack, "db")
    wipe = ["psql", "-U", "postgres", "images_db", "-c", "TRUNCATE images"]
    assert stack.exec(db, wipe).returncode == 0
    for file in (stack.dir / "volumes" / "images").glob("*.png"):
        file.unlink()
    gone = stack.host_run([sys.executable, str(REPO / "scripts" / "smoke.py"), "http://127.0.0.1"])
    assert gone.returncode == 0  # the site still works, empty

    # README "Restore", by hand: the same two lines a user types.
    for line in (
        f"docker exec -i db psql -U postgres images_db < {dump}",
        f"docker compose exec -T backend tar -xzf - -C /images < {archive}",
    ):
        restored = stack.host_run(["sh", "-c", line])
        assert restored.returncode == 0, (line, restored.stderr)
        assert "ERROR" not in restored.stderr
    has = [sys.executable, str(REPO / "scripts" / "smoke.py"), "http://127.0.0.1", "--has", kept]
    back = stack.host_run(has)
    assert back.returncode == 0, back.stderr


def test_healthchecks_that_cannot_run_fail(stack: EmulatedStack) -> None:
    """A program that is not in the image, or a port nobody listens on, is a failing check."""
    for service, old, new in [
        ("nginx", "wget", "curlx"),
        ("backend", "127.0.0.1:8000", "127.0.0.1:8001"),
        ("db", "pg_isready", "pg_isreadyx"),
    ]:
        container = one(stack, service)
        test = stack.model["services"][service]["healthcheck"]["test"]
        mutated = [part.replace(old, new) for part in test]
        assert mutated != test
        assert stack.healthcheck(container, mutated).returncode != 0, service


# -- a backend recreated, and a second replica: nginx follows Docker's DNS -------------------


def served_by(stack: EmulatedStack, replicas: list[Container], timeout: float = 60) -> bool:
    """Sends gallery requests through nginx until each replica has logged one of them."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        probe = uuid.uuid4().hex
        fetch = (
            "import urllib.request as u, urllib.error as e\n"
            "try: u.urlopen(u.Request("
            f"'http://127.0.0.1/images/?probe={probe}', headers={{'Accept': 'application/json'}}),"
            " timeout=30).read()\n"
            "except e.HTTPError: pass\n"
        )
        stack.host_run([sys.executable, "-c", fetch])
        seen |= {r.name for r in replicas if "probe=" in r.output()}
        if seen == {r.name for r in replicas}:
            return True
        time.sleep(0.5)
    return False


def test_a_recreated_backend_and_a_second_replica_get_traffic(stack: EmulatedStack) -> None:
    """nginx looks `backend` up again when its answer is 10 s old (resolver … valid=10s):
    a backend recreated at a new address gets requests within seconds, without restarting
    nginx, and a second replica under the same name gets its share. In Docker each replica has
    its own network namespace, where HOST=0.0.0.0 means its own address; here all containers
    share one, so each replica listens on its own address instead (and its healthcheck asks
    that address), or the old address would still answer."""
    old = one(stack, "backend")
    stack.stop(old)
    replicas = []
    for _ in range(2):
        address = stack.spare_address()
        replica = stack.create("backend", address=address, env={"HOST": address})
        stack.start(replica)
        test = stack.model["services"]["backend"]["healthcheck"]["test"]
        own = [part.replace("127.0.0.1", address) for part in test]
        assert stack.wait_healthy(replica, own), replica.output()
        replicas.append(replica)
        assert served_by(stack, replicas), "nginx did not send requests to every replica"
    assert "probe=" not in old.output()


# -- the tier fails when the deployment is broken (mutation tests) -------------------------


@pytest.fixture(scope="module")
def bare(needs_root: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedStack]:
    """Only the database is up: each test starts (and stops) its own backend and nginx."""
    model, workdir = emulated(
        tmp_path_factory, POSTGRES_PASSWORD=PASSWORD, NGINX_TRUSTED_PROXIES=PROXY
    )
    try:
        with EmulatedStack(model, workdir) as running:
            running.up("db")
            yield running
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def variant(
    stack: EmulatedStack,
    dockerfile_path: Path | None = None,
    backend_env: dict[str, str | None] | None = None,
    budget: float = 20,
) -> list[str]:
    """Starts backend and nginx (from `dockerfile_path`, the backend with `backend_env`) and
    returns what does not work; both are stopped again. A container that is not healthy
    within `budget` seconds counts as failed (Docker would wait longer before calling it
    unhealthy)."""
    started: list[Container] = []
    try:
        for service in ("backend", "nginx"):
            env = backend_env if service == "backend" else None
            container = stack.create(service, dockerfile_path=dockerfile_path, env=env)
            started.append(container)
            stack.start(container)
            if not stack.wait_healthy(container, budget=budget):
                return [f"{container.name} is not healthy: {container.output()[-1500:]}"]
        return problems(stack)
    except (EmulationError, dockerfile.DockerfileError) as exc:  # a build step or a start
        return [str(exc)]
    finally:
        for container in reversed(started):
            stack.stop(container)


def test_the_real_files_work_in_the_bare_stack(bare: EmulatedStack) -> None:
    """The control for the mutations below: the same harness passes on the real files."""
    assert variant(bare) == []


def copy_lines() -> list[str]:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    return [line for line in lines if line.startswith("COPY ")]


@pytest.mark.parametrize("line", copy_lines())
def test_a_missing_copy_line_fails_the_tier(bare: EmulatedStack, line: str, tmp_path: Path) -> None:
    mutant = tmp_path / "Dockerfile"
    text = (REPO / "Dockerfile").read_text()
    mutant.write_text(text.replace(line + "\n", "", 1))
    assert mutant.read_text() != text
    assert variant(bare, dockerfile_path=mutant) != []


def test_the_password_pasted_into_the_url_fails_the_tier(bare: EmulatedStack) -> None:
    """What docker-compose.yml did before: POSTGRES_PASSWORD inside DATABASE_URL."""
    raw = f"postgresql://postgres:{PASSWORD}@db:5432/images_db"
    found = variant(bare, backend_env={"DATABASE_URL": raw, "PGPASSWORD": None}, budget=10)
    assert found and "is not healthy" in found[0]
    # Failing for the reason it failed in Docker: the URL ends its user info at the first @.
    assert "failed to resolve host 'ss'" in found[0]
