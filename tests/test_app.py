"""server.app / `python -m server`: a real backend process starts, serves, and stops cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
import psycopg
import pytest
from websockets.asyncio.client import connect

from tests.support import PostgresServer, start_backend, stop_backend, wait_until_healthy


async def test_sigterm_closes_websockets_with_1001_and_exits_cleanly(
    unit_database_url: str, tmp_path: Path
) -> None:
    process, base = await start_backend(unit_database_url, tmp_path / "images")
    try:
        await wait_until_healthy(base)
        async with httpx.AsyncClient(base_url=base) as client:
            home = await client.get("/")
            assert home.status_code == 200
            assert home.headers["x-content-type-options"] == "nosniff"
        ws_url = base.replace("http://", "ws://") + "/ws"
        async with connect(ws_url, origin=base) as ws:  # type: ignore[arg-type]
            assert json.loads(await ws.recv()) == {"type": "hello", "worker": "solo"}
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(ws.wait_closed(), 10)
            assert ws.close_code == 1001
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        await stop_backend(process)
    assert process.stderr is not None
    log = (await process.stderr.read()).decode()
    assert "200 GET / " in log  # one access-log line per request
    assert "stopped" in log
    assert "Traceback" not in log


@pytest.mark.parametrize("encoding", ["SQL_ASCII", "LATIN1"])
async def test_a_database_that_is_not_utf8_is_refused_at_start(
    postgres: PostgresServer, tmp_path: Path, encoding: str
) -> None:
    """Such a database would hand names back as bytes (SQL_ASCII) or refuse most of them
    (LATIN1) on some later upload: the backend says so at once, exits 2, and creates nothing."""
    database_url = postgres.create_database(encoding=encoding)
    process, _ = await start_backend(database_url, tmp_path)
    assert process.stderr is not None
    async with asyncio.timeout(60):
        log = (await process.stderr.read()).decode()
        assert await process.wait() == 2
    assert f"uses the encoding {encoding}" in log
    assert "needs UTF8" in log and "Traceback" not in log
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (0,)
