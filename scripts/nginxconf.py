"""Render the shipped nginx template the way the nginx image does, and lay out a native run.

The image's entrypoint runs `envsubst` with the list of variables defined in its environment,
so only `$NAME`/`${NAME}` of those names change and nginx's own `$variables` survive.
`render_template` follows the same rule. `write_native_config` puts the shipped
nginx/nginx.conf in a runtime folder with what only a native run needs beside it (its upstream
of N processes, log and temp paths, the pid file and worker account on the command line).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
NGINX_DIR = REPO_ROOT / "nginx"
MAIN_CONFIG_PATH = NGINX_DIR / "nginx.conf"
TEMPLATES_DIR = NGINX_DIR / "templates"
TEMPLATE_PATH = TEMPLATES_DIR / "default.conf.template"
TRUSTED_PROXIES_SCRIPT = NGINX_DIR / "trusted-proxies.sh"
# The upstream{} group local-stack lists its processes in; BACKEND names it.
UPSTREAM_NAME = "imagehosting_backend"

# Request limits per client address, settable through the environment. The defaults let a
# person drop 30 files at once (and delete as many) without meeting them.
LIMIT_DEFAULTS = {
    "NGINX_UPLOAD_RATE": "120r/m",
    "NGINX_UPLOAD_BURST": "60",
    "NGINX_LOGIN_RATE": "10r/m",
    "NGINX_CONN_PER_IP": "20",
    "NGINX_WS_PER_IP": "100",
}

# Derived from the app's MAX_UPLOAD_MB (upload_settings), never set by hand.
UPLOAD_VARIABLES = ("MAX_UPLOAD_MB", "NGINX_MAX_BODY_SIZE")

# Every variable the template expects; each must be given when rendering it.
TEMPLATE_VARIABLES = (
    "NGINX_PORT",
    "BACKEND",
    "NGINX_RESOLVER",
    "IMAGES_DIR",
    "STATIC_DIR",
    "STORAGE",
    *LIMIT_DEFAULTS,
    *UPLOAD_VARIABLES,
)
# What the STORAGE=s3 templates need besides (see `s3_variables`).
S3_TEMPLATE_VARIABLES = (
    "NGINX_S3_SERVER",
    "NGINX_S3_SCHEME",
    "NGINX_S3_HOST",
    "S3_BUCKET",
    "NGINX_CACHE_DIR",
)

# Same grammar as GNU envsubst: `$NAME` (longest identifier) or `${NAME}`.
_REFERENCE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)

_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
# Where write_native_config leaves the main-level directives for nginx_command's -g.
_GLOBALS_FILE = "nginx.globals"


def render_template(text: str, env: Mapping[str, str]) -> str:
    """Replace references to variables defined in `env`; leave every other `$...` as it is."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        return env[name] if name in env else match.group(0)

    return _REFERENCE.sub(substitute, text)


def referenced_variables(text: str) -> set[str]:
    """Names of all `$NAME`/`${NAME}` references (nginx's own variables included)."""
    return {m.group("braced") or m.group("bare") for m in _REFERENCE.finditer(text)}


def upstream_servers(addresses: Iterable[tuple[str, int]]) -> str:
    """The BACKEND_SERVERS value for backends listening on (host, port). max_fails=0: nothing
    a backend answers may take it out of the rotation (see the template's proxy_next_upstream)."""
    return " ".join(f"server {host}:{port} max_fails=0;" for host, port in addresses)


def s3_variables(endpoint_url: str, bucket: str, cache_dir: Path) -> dict[str, str]:
    """The STORAGE=s3 template variables for the store at `endpoint_url`."""
    url = urlsplit(endpoint_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"S3_ENDPOINT_URL is not an http(s) URL: {endpoint_url!r}")
    port = url.port or (443 if url.scheme == "https" else 80)
    return {
        "NGINX_S3_SERVER": f"{url.hostname}:{port}",
        "NGINX_S3_SCHEME": url.scheme,
        "NGINX_S3_HOST": url.netloc,
        "S3_BUCKET": bucket,
        "NGINX_CACHE_DIR": str(cache_dir),
    }


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        raise FileNotFoundError("nginx is not installed (Debian/Ubuntu: apt-get install nginx)")
    return found


def native_site_config(runtime_dir: Path, backend_servers: str) -> str:
    """conf.d/native.conf: the upstream of local processes, and paths under `runtime_dir`
    where the image would use its own (/var/log/nginx, /var/cache/nginx)."""
    logs = runtime_dir / "logs"
    temp = runtime_dir / "temp"
    lines = [
        "# Written by scripts/local-stack: what only a native run needs.",
        f"upstream {UPSTREAM_NAME} {{",
        "    # Plain round-robin: every process can serve every request (live updates reach",
        "    # all of them through PostgreSQL LISTEN/NOTIFY).",
        f"    {backend_servers}",
        "    keepalive 16;",
        "}",
        f"access_log {logs / 'access.log'};",
        *(f"{name}_temp_path {temp / name};" for name in _TEMP_PATHS),
    ]
    return "\n".join(lines) + "\n"


def write_trusted_proxies(conf_dir: Path, proxies: str) -> None:
    """conf.d/trusted-proxies.conf, by the same script the nginx image runs at start."""
    result = subprocess.run(
        ["sh", str(TRUSTED_PROXIES_SCRIPT), str(conf_dir)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NGINX_TRUSTED_PROXIES": proxies},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise ValueError(result.stderr.strip())


def limit_settings(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The request limits: the environment's values where set, else the defaults."""
    return {name: env.get(name) or default for name, default in LIMIT_DEFAULTS.items()}


def upload_settings(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The upload limit as the backends read it from `env`, and nginx's body cap from it."""
    # Imported here: the stack's --help and its checks before start need only the stdlib.
    from server.config import Config

    config = Config.from_env(env)
    return {
        "MAX_UPLOAD_MB": str(config.max_upload_mb),
        "NGINX_MAX_BODY_SIZE": str(config.max_body_bytes),
    }


def write_native_config(
    runtime_dir: Path, variables: Mapping[str, str], *, user: str | None = None
) -> Path:
    """Lay out a native nginx run in `runtime_dir`; return its nginx.conf (the shipped one).

    `variables` are the template's, except that BACKEND_SERVERS (the local upstream's server
    lines) replaces BACKEND and NGINX_RESOLVER; limits default to `limit_settings()`, trusted
    proxies to $NGINX_TRUSTED_PROXIES, the upload limit to `upload_settings()`. `user` names
    the account workers run as; give it only when nginx starts as root.
    """
    variables = (
        limit_settings()
        | upload_settings()
        | {"BACKEND": UPSTREAM_NAME, "NGINX_RESOLVER": "127.0.0.1", "STORAGE": "local"}
        | dict(variables)
    )
    needed = (*TEMPLATE_VARIABLES, "BACKEND_SERVERS")
    if variables["STORAGE"] == "s3":
        needed += S3_TEMPLATE_VARIABLES
    missing = [name for name in needed if name not in variables]
    if missing:
        raise ValueError(f"nginx template variables not given: {', '.join(missing)}")
    runtime_dir = runtime_dir.absolute()
    for sub in ("logs", "temp", "conf.d"):
        (runtime_dir / sub).mkdir(parents=True, exist_ok=True)
    conf_d = runtime_dir / "conf.d"
    # Every template, as the image renders them (the site includes the store's files).
    for template in TEMPLATES_DIR.glob("*.template"):
        rendered = render_template(template.read_text(), variables)
        (conf_d / template.name.removesuffix(".template")).write_text(rendered)
    (conf_d / "native.conf").write_text(
        native_site_config(runtime_dir, variables["BACKEND_SERVERS"])
    )
    write_trusted_proxies(
        conf_d, variables.get("NGINX_TRUSTED_PROXIES", os.environ.get("NGINX_TRUSTED_PROXIES", ""))
    )
    mime_types = Path("/etc/nginx/mime.types")
    if mime_types.exists():
        shutil.copy(mime_types, runtime_dir / "mime.types")
    else:  # nginx.conf includes it; these are the types this site serves
        (runtime_dir / "mime.types").write_text(_FALLBACK_MIME_TYPES)
    main = runtime_dir / "nginx.conf"
    shutil.copy(MAIN_CONFIG_PATH, main)
    globals_ = [
        "daemon off;",
        f"pid {runtime_dir / 'nginx.pid'};",
        f"error_log {runtime_dir / 'logs' / 'error.log'} info;",
    ]
    if user is not None:
        globals_.append(f"user {user};")
    (runtime_dir / _GLOBALS_FILE).write_text(" ".join(globals_))
    return main


_FALLBACK_MIME_TYPES = """types {
    text/html html;
    text/css css;
    text/javascript js mjs;
    application/json json;
    image/svg+xml svg;
    image/png png;
    image/jpeg jpg jpeg;
    image/gif gif;
    image/webp webp;
    image/x-icon ico;
}
"""


def nginx_command(main: Path, *extra: str) -> list[str]:
    """Command line running nginx with `main` (from `write_native_config`); `-p` keeps
    relative defaults in its folder, `-g` adds the run's pid file, log and worker account."""
    globals_ = (main.parent / _GLOBALS_FILE).read_text()
    return [nginx_binary(), "-p", f"{main.parent}/", "-c", str(main), "-g", globals_, *extra]
