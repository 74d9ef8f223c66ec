"""Opening the vault: a failed attempt is reported on every call, retried by the next, and leaves
nothing open behind it (each failed attempt used to keep its database engine and connection)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from mcp import Client
from sqlalchemy.engine import make_url

from alpaca_vault.server.app import build_server
from tests.fixtures.mcp_server import make_settings, text_of
from tests.fixtures.postgres import PostgresDatabases


async def _connections_to(server_url: str, database: str) -> int:
    dsn = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database)
        return count
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_failed_vault_opens_leave_no_database_connection_open(
    tmp_path: Path, postgres_url: str, postgres_databases: PostgresDatabases
) -> None:
    # A database nobody has upgraded: the engine connects, then the first query fails (no tables).
    url = await postgres_databases.create_empty()
    database = make_url(url).database
    assert database is not None
    settings = make_settings(tmp_path, "http://127.0.0.1:9", database_url=url)
    async with Client(build_server(settings)) as client:
        for _ in range(3):
            result = await client.call_tool("list_credentials", {})
            assert result.is_error and "The vault could not be opened" in text_of(result)
        # Every attempt (the warm-up and three calls) failed; none may keep a connection to the database.
        assert await _connections_to(postgres_url, database) == 0
