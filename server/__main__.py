"""`python -m server [--host H] [--port P]`: load config, set up logging, run the app."""

from __future__ import annotations

import argparse
import asyncio
import sys

from dotenv import load_dotenv

from server.app import serve
from server.config import Config, ConfigError
from server.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("--host", help="listen address (overrides HOST)")
    parser.add_argument("--port", type=int, help="listen port (overrides PORT)")
    args = parser.parse_args(argv)

    load_dotenv()  # real environment variables win over .env
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        config = Config.from_env(**overrides)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level, config.worker_name)
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
