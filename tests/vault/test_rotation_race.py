"""Key rotation against a concurrent key replacement on PostgreSQL (#10 item 7).

The attack (or accident): replica B replaces a credential's key pair while an operator runs
``keys rotate --data-keys``. B reads the user's current data key and seals the new pair under it;
before B writes, the rotation retires that key, re-seals the row's old values and destroys the key.
B's write then lands under a destroyed key: the replacement is undone (worse, the credential can
never be opened again). SQLite cannot interleave like this (every writer holds BEGIN IMMEDIATE).

Replica B runs on its own thread, event loop and engine, and pauses just before its UPDATE
(SQLAlchemy's ``before_cursor_execute`` event) until the rotation has either finished or is seen
waiting for a lock in ``pg_stat_activity``: whichever the code under test does.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

from pydantic import SecretStr
from sqlalchemy import event, text

from alpaca_vault.db import Database
from alpaca_vault.vault import CredentialService, KeyRing
from alpaca_vault.vault.rotation import rotate_data_keys
from tests.fixtures.postgres import PostgresDatabases
from tests.vault.conftest import key_pair


def _replace_on_replica_b(
    url: str,
    keyring: KeyRing,
    user_id: uuid.UUID,
    pair: tuple[SecretStr, SecretStr],
    reached: threading.Event,
    go: threading.Event,
) -> None:
    async def replace() -> None:
        db_b = Database.create(url)
        db_b.schema_checked = True

        @event.listens_for(db_b.engine.sync_engine, "before_cursor_execute")
        def pause_before_write(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith("UPDATE CREDENTIALS"):
                reached.set()
                go.wait(15)

        try:
            await CredentialService(db_b, keyring).update(
                user_id, "main", api_key=pair[0], secret_key=pair[1]
            )
        finally:
            await db_b.dispose()

    asyncio.run(replace())


async def _lock_waiters(db: Database) -> int:
    async with db.engine.connect() as conn:
        found = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return int(found or 0)


async def _interleave(db: Database, url: str, keyring: KeyRing, rotation: Any) -> tuple[str, str]:
    service = CredentialService(db, keyring)
    alice = await service.ensure_user("alice")
    await service.store(alice.id, "main", "paper", *key_pair("OLD"))
    new_pair = key_pair("NEW")
    reached, go = threading.Event(), threading.Event()
    replacing = asyncio.ensure_future(
        asyncio.to_thread(_replace_on_replica_b, url, keyring, alice.id, new_pair, reached, go)
    )
    try:
        assert await asyncio.to_thread(reached.wait, 15), "replica B never reached its write"
        rotating = asyncio.ensure_future(rotation(db, keyring))
        deadline = time.monotonic() + 15
        while not rotating.done() and time.monotonic() < deadline:
            if await _lock_waiters(db):
                break  # the rotation waits for B: let B finish
            await asyncio.sleep(0.02)
    finally:
        go.set()
    await replacing
    await rotating
    async with service.unsealed(alice.id, "main") as opened:
        stored = (opened.api_key.get_secret_value(), opened.secret_key.get_secret_value())
    return stored, tuple(value.get_secret_value() for value in new_pair)  # type: ignore[return-value]


async def test_data_key_rotation_keeps_a_key_replacement_made_during_it(
    postgres_databases: PostgresDatabases, keyring: KeyRing
) -> None:
    url = await postgres_databases.create_migrated()
    db = Database.create(url)
    db.schema_checked = True
    try:
        stored, replaced = await _interleave(db, url, keyring, rotate_data_keys)
        assert stored == replaced
        # And the rotation still finished its job: one current key, the old one destroyed.
        async with db.engine.connect() as conn:
            keys = (await conn.execute(text("SELECT retired_at, destroyed_at FROM data_keys"))).all()
        assert sorted(k.destroyed_at is None for k in keys) == [False, True]
    finally:
        await db.dispose()
