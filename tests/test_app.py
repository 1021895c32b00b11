"""server.app / `python -m server`: a real backend process starts, serves, and stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from scripts.pgcluster import free_port

REPO = Path(__file__).resolve().parent.parent


async def test_sigterm_closes_websockets_with_1001_and_exits_cleanly(
    unit_database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "--port",
        str(port),
        cwd=REPO,
        env=os.environ
        | {
            "DATABASE_URL": unit_database_url,
            "IMAGES_DIR": str(tmp_path / "images"),
            "WORKER_NAME": "solo",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(100):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            home = await client.get("/")
            assert home.status_code == 200
            assert home.headers["x-content-type-options"] == "nosniff"
        async with connect(f"ws://127.0.0.1:{port}/ws", origin=base) as ws:  # type: ignore[arg-type]
            assert json.loads(await ws.recv()) == {"type": "hello", "worker": "solo"}
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(ws.wait_closed(), 10)
            assert ws.close_code == 1001
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    log = (await process.stderr.read()).decode()
    assert "200 GET / " in log  # one access-log line per request
    assert "stopped" in log
    assert "Traceback" not in log
