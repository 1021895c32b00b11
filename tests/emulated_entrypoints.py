"""What each image does between `docker start` and its main process (see emulated_images.py
for the sources and the stand-ins): the postgres and nginx entrypoints, and a built stage's CMD."""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tests.emulation import VENV, Container, EmulationError, python_wrapper

if TYPE_CHECKING:
    from tests.emulated_images import EmulatedStack


def _must(stack: EmulatedStack, container: Container, command: list[str], what: str, **kw) -> str:  # noqa: ANN003
    result = stack.exec(container, command, **kw)
    if result.returncode != 0:
        raise EmulationError(f"{container.name}: {what} failed: {result.stdout}{result.stderr}")
    return result.stdout


# Stand-ins for the nginx image's stock files: 1,024 connections, no gzip, conf.d included;
# a default site on port 80 that our rendered default.conf replaces.
STOCK_NGINX_CONF = (
    "worker_processes auto; events { worker_connections 1024; }"
    " http { include mime.types; default_type application/octet-stream;"
    " include /etc/nginx/conf.d/*.conf; }"
)
STOCK_SITE = "server { listen 80; server_name localhost; location / { return 200; } }"


def postgres_entrypoint(stack: EmulatedStack, db: Container) -> None:
    env = db.env
    pgdata = env["PGDATA"]
    user = env.get("POSTGRES_USER") or "postgres"
    database = env.get("POSTGRES_DB") or user
    if "POSTGRES_PASSWORD" not in env and env.get("POSTGRES_HOST_AUTH_METHOD") != "trust":
        raise EmulationError("the postgres image refuses to start without POSTGRES_PASSWORD")
    # docker_create_db_directories, as root
    _must(
        stack,
        db,
        [
            "sh",
            "-c",
            f"mkdir -p {pgdata} && chmod 00700 {pgdata} && mkdir -p /var/run/postgresql"
            " && chmod 03775 /var/run/postgresql"
            f" && chown -R postgres {pgdata} /var/run/postgresql",
        ],
        "making the data folder",
    )
    fresh = stack.exec(db, ["test", "-s", f"{pgdata}/PG_VERSION"]).returncode != 0
    if fresh:
        # initdb reads the password from a file (the image uses a process substitution).
        pwfile = "/tmp/.pwfile"
        _must(
            stack,
            db,
            ["sh", "-c", f'umask 077; printf "%s\\n" "$POSTGRES_PASSWORD" > {pwfile}'],
            "writing the password file",
        )
        _must(stack, db, ["chown", "postgres", pwfile], "handing over the password file")
        as_pg = {"user": "postgres"}
        initdb = ["initdb", f"--username={user}", f"--pwfile={pwfile}", "-D", pgdata]
        _must(stack, db, initdb, "initdb", **as_pg)
        _must(stack, db, ["rm", "-f", pwfile], "removing the password file")
        auth = _must(
            stack, db, ["postgres", "-C", "password_encryption", "-D", pgdata], "auth", **as_pg
        ).strip()
        method = env.get("POSTGRES_HOST_AUTH_METHOD") or auth
        _must(
            stack,
            db,
            [
                "sh",
                "-c",
                f"printf '\\nhost all all all {method}\\n' >> {pgdata}/pg_hba.conf"
                # The image's postgresql.conf.sample listens on every address.
                f" && printf \"listen_addresses = '*'\\n\" >> {pgdata}/postgresql.conf",
            ],
            "pg_hba.conf",
            **as_pg,
        )
        socket_only = "-c listen_addresses='' -p 5432"
        start = ["pg_ctl", "-D", pgdata, "-o", socket_only, "-w", "start"]
        # The server keeps its output open: to the container's log, not to a pipe.
        with db.log.open("ab") as sink:
            started = stack.exec(
                db, start, user="postgres", capture_output=False, stdout=sink, stderr=sink
            )
        if started.returncode != 0:
            raise EmulationError(
                f"{db.name}: the setup server did not start: {db.output()[-2000:]}"
            )
        if database != "postgres":
            psql = ["psql", "-v", "ON_ERROR_STOP=1", "--username", user, "--no-password"]
            psql += ["--no-psqlrc", "--dbname", "postgres", "--set", f"db={database}"]
            _must(stack, db, psql, "CREATE DATABASE", input='CREATE DATABASE :"db" ;\n', **as_pg)
        stop = ["pg_ctl", "-D", pgdata, "-m", "fast", "-w", "stop"]
        _must(stack, db, stop, "stopping the setup server", **as_pg)
    stack.popen(db, ["postgres"], user="postgres")


def nginx_entrypoint(stack: EmulatedStack, nginx: Container) -> None:
    root = shlex.quote(str(nginx.root))
    # The image's own files, where the Dockerfile does not replace them: mime.types (this
    # machine's Debian copy stands in), nginx.conf and conf.d/default.conf (stand-ins with the
    # stock files' effect), and logs going to the container's output.
    conf = f"{root}/etc/nginx"
    stock = "\n".join(
        [
            "set -e",
            f"[ -e {conf}/mime.types ] || cp /etc/nginx/mime.types {conf}/mime.types",
            f"[ -e {conf}/nginx.conf ] || printf '%s\\n' {shlex.quote(STOCK_NGINX_CONF)}"
            f" > {conf}/nginx.conf",
            f"mkdir -p {conf}/conf.d",
            f"[ -e {conf}/conf.d/default.conf ] || printf '%s\\n' {shlex.quote(STOCK_SITE)}"
            f" > {conf}/conf.d/default.conf",
            f"ln -sf /dev/stdout {root}/var/log/nginx/access.log",
            f"ln -sf /dev/stderr {root}/var/log/nginx/error.log",
        ]
    )
    stack.ns.must(["sh", "-c", stock], "the nginx image's own files")
    for name in ("NGINX_ENTRYPOINT_LOCAL_RESOLVERS", "NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE"):
        if nginx.env.get(name):
            raise EmulationError(f"{name} asks for an image script this emulation lacks")
    listing = _must(stack, nginx, ["ls", "-1", "/docker-entrypoint.d"], "listing scripts")
    scripts = {name: f"/docker-entrypoint.d/{name}" for name in listing.split()}
    scripts["20-envsubst-on-templates.sh"] = ""  # the image's own, emulated below

    def version_key(name: str) -> list[object]:  # sort -V
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]

    # The entrypoint runs the scripts in a `find | sort -V | while read` loop: a pipeline's
    # subshell. What a sourced *.envsh exports reaches the scripts after it, not nginx.
    loop = replace(nginx, env=dict(nginx.env))
    for name in sorted(scripts, key=version_key):
        if name == "20-envsubst-on-templates.sh" and not scripts[name]:
            render_templates(stack, loop)
            continue
        if stack.exec(loop, ["test", "-x", scripts[name]]).returncode != 0:
            continue  # the entrypoint ignores a script without its exec bit
        if name.endswith(".sh"):
            _must(stack, loop, [scripts[name]], name)
        elif name.endswith(".envsh"):
            source = ["sh", "-c", '. "$1" && env -0', "sh", scripts[name]]
            exported = _must(stack, loop, source, name)
            shell_own = {"PWD", "OLDPWD", "SHLVL", "_"}
            loop.env = {
                key: value
                for key, _, value in (item.partition("=") for item in exported.split("\0") if item)
                if key not in shell_own
            }
    stack.popen(nginx, ["nginx", "-g", "daemon off;"])


def render_templates(stack: EmulatedStack, nginx: Container) -> None:
    """20-envsubst-on-templates.sh: envsubst with the filtered defined names."""
    from tests.emulated_images import envsubst_filter

    env = nginx.env
    template_dir = env.get("NGINX_ENVSUBST_TEMPLATE_DIR", "/etc/nginx/templates")
    suffix = env.get("NGINX_ENVSUBST_TEMPLATE_SUFFIX", ".template")
    output_dir = env.get("NGINX_ENVSUBST_OUTPUT_DIR", "/etc/nginx/conf.d")
    names = " ".join(f"${{{name}}}" for name in envsubst_filter(env))
    found = stack.exec(
        nginx, ["find", template_dir, "-follow", "-type", "f", "-name", f"*{suffix}"]
    )
    for template in found.stdout.split():
        relative = template.removeprefix(template_dir + "/")
        output = f"{output_dir}/{relative.removesuffix(suffix)}"
        command = (
            f"mkdir -p \"$(dirname '{output}')\" && envsubst '{names}' < '{template}' > '{output}'"
        )
        _must(stack, nginx, ["sh", "-c", command], f"rendering {template}")


def built_entrypoint(stack: EmulatedStack, container: Container) -> None:
    wrapper = shlex.quote(f"{container.root}/.emulation/bin/python")
    text = shlex.quote(python_wrapper())
    # The suite's virtualenv is bound at a fixed place: where it really lives (a clone under
    # /tmp, say) may be hidden by the container's own /tmp, or unreadable by its user.
    venv = shlex.quote(f"{container.root}{VENV}")
    prefix = shlex.quote(str(Path(sys.prefix).resolve()))
    stack.ns.must(
        [
            "sh",
            "-c",
            f"mkdir -p $(dirname {wrapper}) {venv} && mount --bind {prefix} {venv}"
            f" && mount -o remount,bind,ro {venv}"
            f" && printf %s {text} > {wrapper} && chmod 755 {wrapper}",
        ],
        "the python stand-in",
    )
    stage = container.facts["stage"]
    if stage.cmd is None:
        raise EmulationError(f"{container.name}: the Dockerfile stage has no CMD")
    stack.popen(container, stage.cmd)
