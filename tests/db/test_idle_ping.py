"""``pool_pre_ping`` on PostgreSQL: a connection that sat idle in the pool is checked before use, so one the
server dropped is replaced, not reported; one returned a moment ago is used at once (SQLAlchemy's own
pre-ping put BEGIN, a ping and ROLLBACK before every transaction: most of what the server ran under load)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from alpaca_vault.db import Database
from alpaca_vault.db import engine as engine_module
from alpaca_vault.db.engine import ConnectionSettings
from tests.fixtures.postgres import PostgresDatabases, _asyncpg_dsn

pytestmark = pytest.mark.postgres


def _counted_pings(db: Database) -> list[Any]:
    """Every ping the engine's dialect sends from now on (this engine's dialect only)."""
    dialect = db.engine.sync_engine.dialect
    pings: list[Any] = []
    original = dialect.do_ping

    def do_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return original(dbapi_connection)

    dialect.do_ping = do_ping  # type: ignore[method-assign]
    return pings


async def _backend_pid(db: Database) -> int:
    async with db.connection() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_the_server_dropped_while_idle_is_replaced_not_reported(
    postgres_databases: PostgresDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)  # every reuse has sat idle long enough
    url = await postgres_databases.create_migrated()
    db = Database.create(url)
    try:
        pings = _counted_pings(db)
        first = await _backend_pid(db)
        # The server ends it while it waits in the pool (a restart, an idle timeout on the way).
        admin = await asyncpg.connect(_asyncpg_dsn(url))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await admin.close()
        second = await _backend_pid(db)  # no error: the ping found it gone, the pool connected anew
        assert second != first
        assert len(pings) == 1
    finally:
        await db.dispose()


async def test_a_connection_returned_a_moment_ago_is_used_without_a_ping(
    postgres_databases: PostgresDatabases,
) -> None:
    db = Database.create(await postgres_databases.create_migrated())
    try:
        pings = _counted_pings(db)
        pids = [await _backend_pid(db) for _ in range(5)]
        assert len(set(pids)) == 1  # the one pooled connection, reused
        assert pings == []
    finally:
        await db.dispose()


async def test_with_pre_ping_off_no_connection_is_checked(
    postgres_databases: PostgresDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    db = Database.create(
        await postgres_databases.create_migrated(), connection=ConnectionSettings(pool_pre_ping=False)
    )
    try:
        pings = _counted_pings(db)
        for _ in range(3):
            await _backend_pid(db)
        assert pings == []
    finally:
        await db.dispose()
