"""The one frozen `Config`, built from the environment (and `.env` via python-dotenv).

Every setting is declared once in `SETTINGS` with its default and a one-line help;
a test checks that each appears in README.md and .env.example.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024  # "MB" everywhere on the site, as in MAX_UPLOAD_MB


def _multipart_framing() -> int:
    """The most bytes a multipart upload form adds around the file: the `_xsrf` field a plain
    HTML form sends, the file part's headers with the longest name and type a client can send
    (255 characters of up to 4 bytes each, RFC 6838's 255-character media type), and the
    boundary lines at their longest (70 characters, RFC 2046)."""
    boundary = "-" * 70
    name = "\U0001f5bc" * 255
    media_type = "x" * 255
    xsrf = "x" * 128  # Tornado's masked token is about 90 characters
    framing = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="_xsrf"\r\n\r\n{xsrf}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {media_type}\r\n\r\n\r\n--{boundary}--\r\n"
    )
    return len(framing.encode())


# nginx and Tornado cap the whole request body at the upload limit plus this (rounded up to
# a whole KiB); the app then holds the file itself to the exact limit.
MULTIPART_MARGIN = -(-_multipart_framing() // 1024) * 1024


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = str


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _host_names(raw: str) -> tuple[str, ...]:
    """Comma- or space-separated host names, without ports, compared case-insensitively."""
    names = tuple(name.lower() for name in raw.replace(",", " ").split())
    for name in names:
        if "/" in name or (":" in name and not name.endswith("]")):  # "[::1]" is fine
            raise ValueError(f"{name!r}: give host names only (no scheme, port or path)")
    return names


def _storage(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("local", "s3"):
        raise ValueError("must be local or s3")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a TCP port number")
    return value


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DATABASE_URL",
        "postgresql://postgres@127.0.0.1:5432/images_db",
        "PostgreSQL connection URL (the database must exist; tables are created at start).",
    ),
    Setting(
        "STORAGE",
        "local",
        "Where image files live: local (the IMAGES_DIR folder) or s3 (an S3-compatible bucket).",
        _storage,
    ),
    Setting(
        "IMAGES_DIR",
        "./data/images",
        "Folder where uploaded images are stored (STORAGE=local).",
        Path,
    ),
    Setting(
        "S3_ENDPOINT_URL",
        "",
        "URL of the S3 API (STORAGE=s3), e.g. http://seaweedfs:8333 or https://s3.amazonaws.com.",
    ),
    Setting("S3_BUCKET", "images", "Bucket holding the images (STORAGE=s3); made if missing."),
    Setting("S3_ACCESS_KEY_ID", "", "Access key the backend signs S3 requests with."),
    Setting("S3_SECRET_ACCESS_KEY", "", "Secret key the backend signs S3 requests with."),
    Setting("S3_REGION", "us-east-1", "Region of the bucket (STORAGE=s3)."),
    Setting(
        "HOST",
        "127.0.0.1",
        "Address the backend listens on (0.0.0.0 in the container).",
    ),
    Setting("PORT", "8000", "Port the backend listens on.", _port),
    Setting(
        "COOKIE_SECRET",
        "",
        "Key that signs cookies; empty = generate one at first start and keep it in the database.",
    ),
    Setting("LOG_LEVEL", "INFO", "Log level: DEBUG, INFO, WARNING or ERROR.", str.upper),
    Setting("DB_POOL_MIN", "1", "Database connections each backend process keeps open.", int),
    Setting(
        "DB_POOL_MAX",
        "10",
        "Most database connections per backend process.",
        _positive_int,
    ),
    Setting(
        "IMAGE_WORKERS",
        "",
        "Image worker processes per backend (checks and thumbnails); empty = one per core.",
        lambda raw: _positive_int(raw) if raw.strip() else None,
    ),
    Setting(
        "MAX_IMAGE_PIXELS",
        "40000000",
        "Largest image (width x height) accepted; guards against decompression bombs.",
        _positive_int,
    ),
    Setting(
        "MAX_UPLOAD_MB",
        "5",
        "Largest file accepted per upload, in MB (1 MB = 1024 x 1024 bytes); nginx follows it.",
        _positive_int,
    ),
    Setting(
        "ADMIN_PASSWORD",
        "",
        "Password of the admin (/login), who may delete any image; empty = no admin.",
    ),
    Setting(
        "API_TOKEN",
        "",
        "Bearer token for API clients (curl, ShareX) to upload and delete; empty = disabled.",
    ),
    Setting(
        "STRIP_LOCATION",
        "true",
        "Remove GPS location (EXIF GPS, XMP) from uploads before storing them: true or false.",
        _boolean,
    ),
    Setting(
        "ALLOWED_HOSTS",
        "",
        "Host names the site answers to (comma-separated, no ports); empty = any.",
        _host_names,
    ),
    Setting(
        "WORKER_NAME",
        "",
        "Name of this backend process in logs; empty = <hostname>:<port>.",
    ),
)


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    database_url: str
    storage: str
    images_dir: Path
    s3_endpoint_url: str
    s3_bucket: str
    s3_access_key_id: str
    s3_secret_access_key: str
    s3_region: str
    host: str
    port: int
    cookie_secret: str
    log_level: str
    db_pool_min: int
    db_pool_max: int
    image_workers: int | None
    max_image_pixels: int
    admin_password: str
    api_token: str
    strip_location: bool
    allowed_hosts: tuple[str, ...]
    worker_name: str
    max_upload_mb: int

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * MIB

    @property
    def max_body_bytes(self) -> int:
        """The largest request body nginx and Tornado let through (see MULTIPART_MARGIN)."""
        return self.max_upload_bytes + MULTIPART_MARGIN

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = env.get(setting.name, setting.default)
            try:
                values[setting.name.lower()] = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{setting.name}={raw!r}: {exc}") from exc
        values.update(overrides)
        if not values["worker_name"]:
            values["worker_name"] = f"{socket.gethostname()}:{values['port']}"
        if values["db_pool_min"] > values["db_pool_max"]:
            raise ConfigError("DB_POOL_MIN must not exceed DB_POOL_MAX")
        if values["storage"] == "s3" and not values["s3_endpoint_url"]:
            raise ConfigError("STORAGE=s3 needs S3_ENDPOINT_URL")
        return cls(**values)
