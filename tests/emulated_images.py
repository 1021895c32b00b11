"""The Compose services started as their images start them, in the emulation of tests/emulation.py.

- `postgres:*` (the official image's docker-entrypoint.sh, read from its source): data folder
  made private to `postgres`; on an empty volume `initdb --username=$POSTGRES_USER
  --pwfile=<password>`, `host all all all scram-sha-256` appended to pg_hba.conf (the auth
  `postgres -C password_encryption` names), listen_addresses='*' (the image edits its sample
  config), a socket-only server to `CREATE DATABASE $POSTGRES_DB`; then `postgres` as
  `postgres`. This machine's PostgreSQL (15 here) stands in for the image's 16, and C.UTF-8 for its
  en_US.utf8 locale, and this machine's postgres account for the image's uid 999.
- `nginx:*` (the official image's /docker-entrypoint.sh): every executable `*.sh` in
  /docker-entrypoint.d/ in version order, the image's own 20-envsubst-on-templates.sh among
  them (emulated: envsubst over the defined variables matching NGINX_ENVSUBST_FILTER, each
  `*.template` under /etc/nginx/templates to /etc/nginx/conf.d without the suffix), then
  `nginx -g 'daemon off;'` as root. Its other scripts act only on the stock default.conf
  (10-listen-on-ipv6) or when NGINX_ENTRYPOINT_* is set (15, 30): the compose file sets none.
  This machine's nginx 1.22 and GNU wget stand in for the image's 1.27 and busybox wget.
- built stages (`python:*` here): the Dockerfile's CMD in its WORKDIR as its USER, `python`
  being the suite's virtualenv (the image's pip install is what only the Docker workflow runs).
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests import dockerfile
from tests.emulated_docker import container_command
from tests.emulation import (
    DNS_ADDRESS,
    FIRST_ADDRESS,
    REPO,
    Container,
    EmulationError,
    Namespace,
    duration,
    root_script,
    wait_until,
    write_json,
)

STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The newest PostgreSQL server installed the Debian way (15 on our machines).
PG_BIN = max(
    (str(p) for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()),
    key=lambda path: int(Path(path).parent.name),
    default="/usr/lib/postgresql/15/bin",
)

# Per base image: the environment its ENV lines give, the folders it owns (fresh here), its user.
IMAGES: dict[str, dict[str, Any]] = {
    "postgres": {
        # The image appends its bin folder to PATH; first here, so that this machine's
        # wrappers in /usr/local/bin are not taken for the image's programs.
        # The image sets LANG=en_US.utf8, so initdb makes UTF8 databases; C.UTF-8 is this
        # machine's UTF-8 locale (without it: SQL_ASCII, and text comes back as bytes).
        "env": {
            "PATH": f"{PG_BIN}:{STANDARD_PATH}",
            "PGDATA": "/var/lib/postgresql/data",
            "LANG": "C.UTF-8",
        },
        "owned": ["/var/lib/postgresql", "/run/postgresql", "/docker-entrypoint-initdb.d"],
        "user": "0",
        "stop_signal": signal.SIGINT,
    },
    "nginx": {
        "env": {"PATH": STANDARD_PATH},
        "owned": ["/etc/nginx", "/docker-entrypoint.d", "/srv", "/var/log/nginx", "/var/lib/nginx"],
        "user": "0",
        "stop_signal": signal.SIGQUIT,
    },
    "python": {
        "env": {"PATH": f"/.emulation/bin:{STANDARD_PATH}", "LANG": "C.UTF-8"},
        # /root: this machine's is private to root, and the stand-in Python may live below
        # it (pyenv); its installation is bound there, readable by the container's user.
        "owned": ["/.emulation", "/root"],
        "user": "0",
        "stop_signal": signal.SIGTERM,
    },
}


class EmulatedStack:
    """The services of one resolved Compose model (`docker-compose config --format json`)."""

    def __init__(self, model: dict[str, Any], workdir: Path, dockerfile_path: Path | None = None):
        self.model = model
        self.project = model.get("name", "project")
        self.dir = workdir
        self.dockerfile = dockerfile_path or REPO / "Dockerfile"
        self.containers: dict[str, Container] = {}
        self.dns: dict[str, list[str]] = {}
        self.addresses = {
            name: f"127.0.0.{FIRST_ADDRESS + i}" for i, name in enumerate(model["services"])
        }
        self.spare = FIRST_ADDRESS + len(self.addresses)
        for sub in ("roots", "layers", "volumes", "logs", "bin"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        docker = workdir / "bin" / "docker"
        shim = REPO / "tests" / "emulated_docker.py"
        docker.write_text(f'#!/bin/sh\nexec python3 {shlex.quote(str(shim))} "$@"\n')
        docker.chmod(0o755)
        self.ns = Namespace()
        try:
            self.ns.must(["ip", "link", "set", "lo", "up"], "loopback up")
            self._publish()
            log = workdir / "logs" / "dns.log"
            dns = REPO / "tests" / "emulated_dns.py"
            self.dns_process = self.ns.popen(
                ["python3", str(dns), DNS_ADDRESS, str(workdir / "dns.json")], log
            )
            if not wait_until(lambda: "ready" in log.read_text(), 30, 0.1):
                raise EmulationError(f"the DNS stand-in did not start: {log.read_text()}")
        except BaseException:
            self.ns.close()
            raise

    def __enter__(self) -> EmulatedStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for container in reversed(list(self.containers.values())):
            self.stop(container)
        self.dns_process.kill()
        self.dns_process.wait(30)
        self.ns.close()

    # -- containers ---------------------------------------------------------------------

    def create(
        self,
        service: str,
        *,
        env: dict[str, str | None] | None = None,
        address: str | None = None,
        dockerfile_path: Path | None = None,
    ) -> Container:
        spec = self.model["services"][service]
        if address is None and any(c.service == service for c in self.containers.values()):
            address = self.spare_address()
        address = address or self.addresses[service]
        count = sum(c.service == service for c in self.containers.values()) + 1
        name = spec.get("container_name") or f"{self.project}-{service}-{count}"
        stage = None
        if "build" in spec:
            stage = dockerfile.stage(
                dockerfile_path or self.dockerfile, spec["build"].get("target")
            )
            base = stage.base
        else:
            base = spec["image"]
        image = IMAGES[base.split(":")[0]]
        layer = None
        if stage is not None:
            layer = self.dir / "layers" / name
            dockerfile.assemble(stage, REPO, layer)
        environment = image["env"] | (stage.env if stage else {}) | spec.get("environment", {})
        # Docker's own: the container id as hostname, and HOME.
        environment |= {"HOSTNAME": f"emulated-{name}", "HOME": "/root"}
        for key, value in (env or {}).items():  # a test's variant; None removes a variable
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        user = spec.get("user") or (stage.user if stage and stage.user else image["user"])
        workdir = spec.get("working_dir") or (stage.workdir if stage else "/")
        root = self.dir / "roots" / name
        hosts = self.dir / "roots" / f"{name}.hosts"
        hosts.write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost\n{address}\temulated-{name}\n")
        resolv = self.dir / "roots" / f"{name}.resolv"
        resolv.write_text(f"nameserver {DNS_ADDRESS}\noptions ndots:0\n")
        mounts = [self._mount(m, service, stage, user) for m in spec.get("volumes", [])]
        if base.startswith("python:"):
            # The interpreter, where the container would not see it: below /root (private)
            # or /tmp and /run (the container's own). The virtualenv: see built_entrypoint.
            if Path(sys.base_prefix).parts[1] in ("root", "tmp", "run"):
                mounts.append((sys.base_prefix, sys.base_prefix, True))
        files = {"/etc/hosts": hosts, "/etc/resolv.conf": resolv}
        script = root_script(root, image["owned"], layer, mounts, files)
        self.ns.must(["sh", "-c", script], f"building {name}'s root")
        container = Container(
            name=name,
            service=service,
            root=root,
            address=address,
            env=environment,
            user=str(user),
            workdir=workdir,
            log=self.dir / "logs" / f"{name}.log",
            stop_signal=image["stop_signal"],
            facts={"base": base, "stage": stage},
        )
        self.containers[name] = container
        self.dns.setdefault(service, []).append(address)
        if spec.get("container_name"):
            self.dns[name] = [address]
        self._route(service, address)
        self._publish()
        return container

    def spare_address(self) -> str:
        """An address no container had: a recreated or added replica's."""
        self.spare += 1
        return f"127.0.0.{self.spare - 1}"

    def _mount(
        self, spec: dict[str, Any], service: str, stage: Any, user: str
    ) -> tuple[str, str, bool]:
        target, read_only = spec["target"], bool(spec.get("read_only"))
        if spec["type"] == "bind":
            return spec["source"], target, read_only
        volume = self.dir / "volumes" / spec["source"]
        if not volume.exists():
            # Docker fills a new named volume from the image's folder at that path, owner
            # included: the postgres image's data folder is postgres's; a folder the
            # Dockerfile declares a VOLUME is taken to belong to its USER (its RUN line
            # makes it so; RUN is not executed here).
            volume.mkdir()
            volume.chmod(0o755)
            if target == IMAGES["postgres"]["env"]["PGDATA"]:
                account = pwd.getpwnam("postgres")
                os.chown(volume, account.pw_uid, account.pw_gid)
            elif stage is not None and any(target in line for line in stage.ignored):
                uid, _, gid = user.partition(":")
                os.chown(volume, int(uid), int(gid or uid))
        return str(volume), target, read_only

    def _route(self, service: str, address: str) -> None:
        """Connections to `address` come from the address of the service that depends on it."""
        clients = [
            name
            for name, spec in self.model["services"].items()
            if service in (spec.get("depends_on") or {})
        ]
        if len(clients) == 1:
            source = self.addresses[clients[0]]
            self.ns.must(
                ["ip", "route", "replace", "local", f"{address}/32", "dev", "lo"]
                + ["src", source, "table", "local"],
                "route",
            )

    def _publish(self) -> None:
        write_json(self.dir / "dns.json", self.dns)
        write_json(self.dir / "docker.json", {n: c.record() for n, c in self.containers.items()})

    def set_dns(self, service: str, addresses: list[str]) -> None:
        self.dns[service] = addresses
        self._publish()

    def exec(
        self, container: Container, command: list[str], user: str | None = None, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        record = container.record() | ({"user": user} if user else {})
        return self.ns.run(container_command(record, command), **kwargs)

    def start(self, container: Container) -> None:
        base = container.facts["base"].split(":")[0]
        if base == "postgres":
            from tests.emulated_entrypoints import postgres_entrypoint as entrypoint
        elif base == "nginx":
            from tests.emulated_entrypoints import nginx_entrypoint as entrypoint
        else:
            from tests.emulated_entrypoints import built_entrypoint as entrypoint
        entrypoint(self, container)
        self._publish()

    def popen(self, container: Container, command: list[str], user: str | None = None) -> None:
        record = container.record() | ({"user": user} if user else {})
        container.process = self.ns.popen(container_command(record, command), container.log)

    def stop(self, container: Container) -> None:
        if container.process is not None and container.process.poll() is None:
            container.process.send_signal(container.stop_signal)
            try:
                container.process.wait(30)
            except subprocess.TimeoutExpired:
                container.process.kill()
                container.process.wait(10)
        for addresses in self.dns.values():
            if container.address in addresses and container.running is False:
                addresses.remove(container.address)
        self._publish()

    # -- healthchecks -------------------------------------------------------------------

    def healthcheck(
        self, container: Container, test: list[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """One run of the service's healthcheck (or `test`), as Docker runs it: CMD in exec
        form, CMD-SHELL through /bin/sh -c, as the container's user, in the container."""
        test = test or self.model["services"][container.service]["healthcheck"]["test"]
        if test[0] == "CMD":
            command = test[1:]
        elif test[0] == "CMD-SHELL":
            command = ["/bin/sh", "-c", test[1]]
        else:
            raise EmulationError(f"not a healthcheck Docker runs: {test}")
        try:
            # Docker's timeout is the compose file's; a loaded test machine gets more room.
            return self.exec(container, command, timeout=60)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(command, 124, "", f"timed out: {exc}")

    def wait_healthy(
        self, container: Container, test: list[str] | None = None, budget: float | None = None
    ) -> bool:
        """Polls the healthcheck until it passes; False once the main process has exited or
        after start_period + retries x interval, when Docker would call it unhealthy (or
        after `budget` seconds, for tests that only need to see it fail)."""
        spec = self.model["services"][container.service].get("healthcheck", {})
        if budget is None:
            start = duration(spec.get("start_period"), 0)
            budget = start + duration(spec.get("interval"), 30) * int(spec.get("retries", 3))
        outcome = {"ok": False}

        def check() -> bool:
            if not container.running:
                return True
            outcome["ok"] = self.healthcheck(container, test).returncode == 0
            return outcome["ok"]

        wait_until(check, budget, interval=1.0)
        return outcome["ok"] and container.running

    def up(self, service: str, **kwargs: Any) -> Container:
        container = self.create(service, **kwargs)
        self.start(container)
        if not self.wait_healthy(container):
            last = self.healthcheck(container) if container.running else None
            raise EmulationError(
                f"{container.name} did not become healthy"
                + (f"; healthcheck: {last.stdout[-500:]}{last.stderr[-1000:]}" if last else "")
                + f"\n--- its output ---\n{container.output()[-4000:]}"
            )
        return container

    def host_run(
        self, command: list[str], timeout: float = 300, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """A command on the Docker host: in the namespace, outside every container, with the
        `docker` stand-in on PATH."""
        env = {
            "PATH": f"{self.dir / 'bin'}:{os.environ.get('PATH', STANDARD_PATH)}",
            "HOME": str(self.dir),
            "EMULATED_DOCKER_STATE": str(self.dir / "docker.json"),
            "LANG": "C.UTF-8",
        }
        return self.ns.run(command, timeout=timeout, env=env, **kwargs)


def envsubst_filter(env: dict[str, str]) -> list[str]:
    """The names 20-envsubst-on-templates.sh hands envsubst: the defined variables whose names
    match NGINX_ENVSUBST_FILTER (an awk ERE; every name when unset)."""
    pattern = re.compile(env.get("NGINX_ENVSUBST_FILTER", ""))
    return sorted(name for name in env if pattern.search(name))


def start_order(model: dict[str, Any]) -> list[str]:
    """Services in the order `docker compose up` starts them: dependencies first."""
    services = model["services"]
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in order:
            for dependency in services[name].get("depends_on") or {}:
                visit(dependency)
            order.append(name)

    for name in services:
        visit(name)
    return order
