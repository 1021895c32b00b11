"""`make seed N=1000000`: fill the gallery's database with N rows, fast, to try it at scale.

One `INSERT ... SELECT generate_series` (the total's statement-level trigger runs once),
then VACUUM ANALYZE so the planner has statistics and the visibility map lets the page
queries use index-only scans, as autovacuum would on a live site. Rows only: the files do
not exist, so the gallery shows broken images; the database work is the real thing.
DATABASE_URL comes from the environment or .env, as for the app.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time

import psycopg
from dotenv import load_dotenv

from server.config import Config
from server.db import make_pool, migrate, open_pool

_SEED_ROWS = """
INSERT INTO images (filename, original_name, size, width, height, format, owner_hash,
                    uploaded_at, thumb_width, thumb_height)
SELECT md5(%(salt)s || n) || '.jpg', 'seed-' || n || '.jpg', 150000 + n %% 50000, 1600, 1200,
       'JPEG', %(owner)s, now() - make_interval(secs => %(n)s - n), 320, 240
FROM generate_series(1, %(n)s::int) AS n
"""


async def _migrate(database_url: str) -> None:
    pool = make_pool(Config.from_env({}, database_url=database_url, db_pool_max=1))
    try:
        await open_pool(pool, attempts=3)
        await migrate(pool)
    finally:
        await pool.close()


def seed(database_url: str, rows: int) -> float:
    """Add `rows` rows; returns the seconds it took."""
    asyncio.run(_migrate(database_url))
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        # The commit must reach the WAL before VACUUM may mark pages all-visible.
        conn.execute("SET synchronous_commit = on")
        with conn.transaction():
            conn.execute(
                _SEED_ROWS,
                {"salt": secrets.token_hex(8), "owner": secrets.token_hex(32), "n": rows},
            )
        conn.execute("VACUUM (ANALYZE) images, image_total")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int, nargs="?", default=1_000_000, help="rows to add")
    args = parser.parse_args()
    load_dotenv()
    config = Config.from_env(worker_name="seed")
    seconds = seed(config.database_url, args.rows)
    print(f"added {args.rows:,} rows in {seconds:.1f} s")


if __name__ == "__main__":
    main()
