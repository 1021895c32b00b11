"""The `docker` command inside the Compose emulation: only what backup.sh, restore.sh and the
README's restore lines use, with Docker's CLI semantics.

    docker exec [-i] [-t] CONTAINER COMMAND...      stdin attached only with -i
    docker inspect -f '{{.State.Running}}' CONTAINER
    docker compose version
    docker compose [--project-directory DIR] [-f FILE]... ps -q SERVICE
    docker compose [--project-directory DIR] [-f FILE]... exec [-T] SERVICE COMMAND...
                                                    stdin attached (compose's default)

A command runs in the container's root, as the container's user, with the container's
environment and working directory (not the caller's), and its exit status is returned, as
`docker exec` does. Anything else is refused with status 2: a script that starts using another
form fails here instead of passing untested. The containers are described by the JSON file
named in $EMULATED_DOCKER_STATE, written by tests/emulation.py; `container_command` is shared
with it, so a container's processes start the same way from both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any


def container_command(container: dict[str, Any], command: list[str]) -> list[str]:
    """`command` entered into the container: its root, user, environment, working dir."""
    user = str(container["user"])
    drop = []
    if user not in ("0", "0:0", "root"):
        uid, _, gid = user.partition(":")
        if uid.isdigit():
            drop = ["setpriv", f"--reuid={uid}", f"--regid={gid or uid}", "--clear-groups"]
        else:  # a name from the image's /etc/passwd, with its groups
            drop = ["setpriv", f"--reuid={uid}", f"--regid={gid or uid}", "--init-groups"]
    environment = [f"{k}={v}" for k, v in container["env"].items()]
    return [
        "chroot",
        container["root"],
        *drop,
        "env",
        "-i",
        "-C",
        container["workdir"],
        *environment,
        *command,
    ]


def fail(message: str, status: int = 1) -> int:
    print(message, file=sys.stderr)
    return status


def run_in(containers: dict[str, Any], name: str, command: list[str], interactive: bool) -> int:
    container = containers.get(name)
    if container is None:
        return fail(f"Error response from daemon: No such container: {name}")
    if not container["running"]:
        return fail(f"Error response from daemon: container {container['id']} is not running")
    if not command:
        return fail('"docker exec" requires at least 2 arguments.')
    stdin = None if interactive else subprocess.DEVNULL
    argv = container_command(container, command)
    return subprocess.run(argv, stdin=stdin, check=False).returncode


def compose(containers: dict[str, Any], args: list[str]) -> int:
    while args and args[0] in ("--project-directory", "-f", "--file"):
        args = args[2:]
    if args == ["version"]:
        print("Docker Compose version v2 (emulated by tests/emulated_docker.py)")
        return 0
    by_service = {c["service"]: name for name, c in containers.items()}
    if len(args) == 3 and args[:2] == ["ps", "-q"]:
        name = by_service.get(args[2])
        if name is not None and containers[name]["running"]:
            print(containers[name]["id"])
        return 0
    if args[:1] == ["exec"]:
        args = args[1:]
        while args and args[0] == "-T":  # no pseudo-TTY; stdin stays attached
            args = args[1:]
        if not args:
            return fail("emulated docker: compose exec needs a service", 2)
        name = by_service.get(args[0])
        if name is None:
            return fail(f"service {args[0]!r} is not running")
        return run_in(containers, name, args[1:], interactive=True)
    return fail(f"emulated docker: unsupported: docker compose {' '.join(args)}", 2)


def main(argv: list[str]) -> int:
    with open(os.environ["EMULATED_DOCKER_STATE"]) as fh:
        containers = json.load(fh)
    if argv[:1] == ["compose"]:
        return compose(containers, argv[1:])
    if argv[:1] == ["exec"]:
        args = argv[1:]
        interactive = False
        while args and args[0] in ("-i", "-t", "-it", "-ti"):
            interactive = interactive or "i" in args[0]
            args = args[1:]
        if not args:
            return fail('"docker exec" requires at least 2 arguments.')
        return run_in(containers, args[0], args[1:], interactive)
    if len(argv) == 4 and argv[:3] == ["inspect", "-f", "{{.State.Running}}"]:
        container = containers.get(argv[3])
        if container is None:
            return fail(f"Error: No such object: {argv[3]}")
        print("true" if container["running"] else "false")
        return 0
    return fail(f"emulated docker: unsupported: docker {' '.join(argv)}", 2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
