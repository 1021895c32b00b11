"""Logging through loguru, with the standard library's loggers (Tornado, psycopg) routed in."""

from __future__ import annotations

import logging
import sys

from loguru import logger


class _InterceptHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def setup_logging(level: str, worker_name: str) -> None:
    logger.remove()
    logger.add(
        sys.stderr,
        level=level,
        format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} [" + worker_name + "] {message}",
        backtrace=False,
        diagnose=False,  # never print local variables (request bodies, secrets) into logs
    )
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    # Tornado's access log is replaced by one loguru line per request (see server.app).
    logging.getLogger("tornado.access").disabled = True
