"""server.app / `python -m server`: a real backend process starts, serves, and stops cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.support import start_backend, stop_backend, wait_until_healthy


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
