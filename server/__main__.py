"""`python -m server [--host H] [--port P]`: load config, set up logging, run the app.

`python -m server thumbnails`: make the thumbnails that images lack, then exit.

`python -m server check [--repair]`: compare the images folder with the database, log what
disagrees (and with --repair fix it), exit 0 when consistent, 1 when problems remain, 2 when
the check could not run.

`python -m server migrate-storage --to s3|local`: copy every image and thumbnail from the
other store into that one, verifying sizes; safe to re-run. Exit 0 when all are there.

`--env-file FILE` (before the command) reads settings from FILE first, over the environment:
e.g. the `stack.env` that scripts/local-stack writes into its data dir.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from dotenv import load_dotenv
from loguru import logger

from server import backfill, integrity, migrate_storage
from server.app import serve
from server.config import Config, ConfigError
from server.db import DatabaseNotUsable
from server.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="Run the ImageHosting backend (default), or check its data.",
    )
    parser.add_argument("--host", help="listen address (overrides HOST)")
    parser.add_argument("--port", type=int, help="listen port (overrides PORT)")
    parser.add_argument(
        "--env-file",
        type=Path,
        help="read settings from this file first, over the environment (e.g. the stack.env "
        "that scripts/local-stack writes in its data dir); .env still fills the rest",
    )
    commands = parser.add_subparsers(dest="command", metavar="{check,thumbnails,migrate-storage}")
    check = commands.add_parser(
        "check",
        help="reconcile the images folder with the database and exit",
        description="Report rows whose file is missing, image files with no row and leftover "
        "temp files. Exit status: 0 consistent, 1 problems remain, 2 could not check.",
    )
    check.add_argument(
        "--repair",
        action="store_true",
        help="delete rows whose file is missing, files with no row, and leftover temp files",
    )
    commands.add_parser(
        "thumbnails",
        help="make the thumbnails that images lack and exit",
        description="Make the WebP thumbnails of every image that has none (or lost their "
        "files) and record them. Safe while the site runs. Exit status: 0 every image has "
        "thumbnails, 1 some could not be made, 2 could not run.",
    )
    migrate = commands.add_parser(
        "migrate-storage",
        help="copy every image and thumbnail into the local folder or the bucket and exit",
        description="Copy every image and thumbnail from the other store (IMAGES_DIR or the "
        "S3_* bucket) into the one named by --to, verifying each size; what is already there "
        "is left alone, so it is safe to re-run. Nothing is deleted. Exit status: 0 all "
        "copied, 1 some failed, 2 could not run.",
    )
    migrate.add_argument("--to", required=True, choices=("s3", "local"), help="the target store")
    args = parser.parse_args(argv)

    if args.env_file is not None:
        if not args.env_file.is_file():
            print(f"--env-file: {args.env_file} is not a file", file=sys.stderr)
            return 2
        # Asked for by name, so it wins over the environment (unlike .env below).
        load_dotenv(args.env_file, override=True)
    load_dotenv()  # real environment variables win over .env
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if args.command == "check":
        overrides.setdefault("worker_name", "check")
    if args.command in ("thumbnails", "migrate-storage"):
        overrides.setdefault("worker_name", args.command)
    try:
        config = Config.from_env(**overrides)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level, config.worker_name)
    try:
        if args.command == "thumbnails":
            return asyncio.run(backfill.run_backfill(config))
        if args.command == "check":
            return asyncio.run(integrity.run_check(config, fix=args.repair))
        if args.command == "migrate-storage":
            return migrate_storage.run_migration(config, args.to)
        asyncio.run(serve(config))
    except DatabaseNotUsable as exc:
        logger.error("cannot start: {}", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
