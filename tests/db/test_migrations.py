"""Migrations match the models and are applied on demand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from alpaca_vault.audit.log import _SQLITE_COLUMNS as _AUDIT_COLUMNS  # every column, the legacy id too
from alpaca_vault.db import Database, DatabaseError, ensure_schema, upgrade
from alpaca_vault.db.migrate import current_revision, head_revision
from alpaca_vault.db.models import AuditEvent, Base
from alpaca_vault.vault.keyring import KeyRing
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


async def _audit_shape(database: Database) -> tuple[list[str], set[str], list[list[str]]]:
    """audit_events' primary key columns, its column names and its unique constraints' columns."""

    def read(connection: Connection) -> tuple[list[str], set[str], list[list[str]]]:
        inspector = inspect(connection)
        columns = {c["name"] for c in inspector.get_columns("audit_events")}
        key = list(inspector.get_pk_constraint("audit_events")["constrained_columns"])
        return key, columns, [u["column_names"] for u in inspector.get_unique_constraints("audit_events")]

    async with database.engine.connect() as conn:
        return await conn.run_sync(read)


async def _migrate(database: Database, revision: str) -> None:
    from alembic import command

    from alpaca_vault.db.migrate import make_config

    action = command.upgrade if revision == "head" else command.downgrade
    async with database.engine.begin() as conn:
        await conn.run_sync(lambda c: action(make_config(connection=c), revision))


async def test_migration_0009_rekeys_the_audit_trail_and_keeps_every_chain_verifiable(
    database: Database, keyring: KeyRing
) -> None:
    """0009 keys audit_events by (user_id, seq) (SQLite: WITHOUT ROWID, one B-tree per append) and keeps
    ``id`` for a release, nullable and unindexed; events written before it, and after a downgrade and an
    upgrade again, all verify; row-level security survives on PostgreSQL."""
    from alpaca_vault.audit import AuditLog, ChainKeys
    from alpaca_vault.audit.chain import STDIO
    from alpaca_vault.vault.credentials import CredentialService

    service = CredentialService(database, keyring)
    alice, bob = (await service.ensure_user("alice")).id, (await service.ensure_user("bob")).id
    log = AuditLog(database, ChainKeys.from_keyring(keyring))

    async def append(n: int) -> None:
        for i in range(n):
            await log.append(alice if i % 2 else bob, "credential.unseal", STDIO, tool="alpaca_get_account")

    await append(6)
    assert await _audit_shape(database) == (["user_id", "seq"], {*_AUDIT_COLUMNS}, [])
    if database.url.startswith("sqlite"):
        async with database.engine.connect() as conn:  # a WITHOUT ROWID table has no rowid to select
            with pytest.raises(Exception, match="no such column: rowid"):
                await conn.execute(text("SELECT rowid FROM audit_events"))

    await _migrate(database, "0008")
    assert await _audit_shape(database) == (["id"], {*_AUDIT_COLUMNS}, [["user_id", "seq"]])
    async with database.engine.connect() as conn:  # every event kept, each given an id of its own
        ids = (await conn.execute(text("SELECT id FROM audit_events"))).scalars().all()
    assert None not in ids and len(ids) == len(set(ids)) == 6
    await _migrate(database, "head")

    await append(4)  # the tails this process remembers still hold: the chain goes on where it was
    report = await log.as_owner().verify()
    assert report.ok and (report.users, report.events) == (2, 10), [str(p) for p in report.problems]
    assert [e.seq for e in await log.events(alice, newest_first=False)] == [1, 2, 3, 4, 5]
    if database.is_postgres:
        async with database.engine.connect() as conn:
            forced = await conn.scalar(
                text("SELECT relforcerowsecurity FROM pg_class WHERE relname = 'audit_events'")
            )
            policies = await conn.scalars(
                text("SELECT policyname FROM pg_policies WHERE tablename = 'audit_events'")
            )
            assert forced is True and sorted(policies) == ["maintenance", "tenant_isolation"]


async def test_after_0009_a_server_of_the_previous_version_still_appends_and_reads(
    database: Database, keyring: KeyRing
) -> None:
    """A server started before the upgrade inserts an ``id`` with each event and maps the table on ``id``
    (0008's key): the upgraded table takes its inserts, (user_id, seq) still refuses a second event at the
    same place in a chain, and the events this version writes carry an id, so its ORM reads every one (a
    row whose whole key is NULL comes back as no object at all)."""
    from sqlalchemy import BigInteger, Uuid
    from sqlalchemy.orm import DeclarativeBase, mapped_column

    from alpaca_vault.audit import AuditLog, ChainKeys
    from alpaca_vault.audit.chain import STDIO
    from alpaca_vault.vault.credentials import CredentialService

    class OldBase(DeclarativeBase):
        pass

    class OldAuditEvent(OldBase):  # the mapping of 0008's code, as far as the key goes
        __tablename__ = "audit_events"
        id = mapped_column(Uuid, primary_key=True)
        user_id = mapped_column(Uuid)
        seq = mapped_column(BigInteger)

    user = (await CredentialService(database, keyring).ensure_user("alice")).id
    log = AuditLog(database, ChainKeys.from_keyring(keyring))
    for _ in range(2):  # this version's appends: the first under the write lock, the next on its tail
        await log.append(user, "credential.unseal", STDIO, tool="alpaca_get_account")

    def event(seq: int) -> dict[str, object]:
        return {
            "id": uuid.uuid4(),
            "user_id": user,
            "seq": seq,
            "at": datetime.now(UTC),
            "actor": "stdio",
            "action": "credential.unseal",
            "details": {},
            "kid": "k1",
            "prev_hash": "0" * 64,
            "hash": "1" * 64,
        }

    async with database.engine.begin() as conn:  # the old server's append, after this version's
        await conn.execute(insert(AuditEvent), [event(3)])
    with pytest.raises(IntegrityError):
        async with database.engine.begin() as conn:
            await conn.execute(insert(AuditEvent), [event(3)])
    async with database.session(user, readonly=True) as session:
        read = list(await session.scalars(select(OldAuditEvent).order_by(OldAuditEvent.seq)))
    assert [(e is not None and e.seq) for e in read] == [1, 2, 3]
