"""Migrations match the models and are applied on demand."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from alpaca_vault.db import Database, DatabaseError, ensure_schema, upgrade
from alpaca_vault.db.migrate import current_revision, head_revision
from alpaca_vault.db.models import Base
from tests.fixtures.postgres import PostgresDatabases


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_autogenerate_finds_no_difference_between_models_and_migrations(database: Database) -> None:
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_migrated_database_is_at_head_with_all_tables(database: Database) -> None:
    assert await current_revision(database) == head_revision()
    async with database.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {
        "users",
        "credentials",
        "api_tokens",
        "data_keys",
        "audit_events",
        "order_intents",
        "alembic_version",
    } <= tables


async def test_ensure_schema_upgrades_a_fresh_embedded_sqlite_file(tmp_path: Path) -> None:
    db = Database.create(f"sqlite+aiosqlite:///{tmp_path / 'new' / 'vault.db'}")
    try:
        assert await current_revision(db) is None
        await ensure_schema(db)
        assert await current_revision(db) == head_revision()
        async with db.session() as session:
            await session.execute(text("SELECT count(*) FROM credentials"))
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_ensure_schema_on_an_unmigrated_postgres_says_to_run_db_upgrade(
    postgres_databases: PostgresDatabases,
) -> None:
    url = await postgres_databases.create_empty()
    db = Database.create(url)
    try:
        with pytest.raises(DatabaseError, match="alpaca-vault db upgrade"):
            await ensure_schema(db)
        await upgrade(url)
        db.schema_checked = False
        await ensure_schema(db)
        assert await current_revision(db) == head_revision()
    finally:
        await db.dispose()


async def test_upgrade_is_idempotent(database: Database) -> None:
    await upgrade(database.url)
    await upgrade(database.url)
    assert await current_revision(database) == head_revision()


def test_fast_head_revision_agrees_with_alembic() -> None:
    from alpaca_vault.db.migrate import alembic_head_revision

    assert head_revision() == alembic_head_revision()
