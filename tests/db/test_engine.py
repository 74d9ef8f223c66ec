"""Database engine and sessions on both backends."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import IntegrityError

from alpaca_vault.db import Credential, Database, DatabaseError, SealedValue, User
from alpaca_vault.db.migrate import upgrade_database
from tests.fixtures.postgres import PostgresDatabases

SEALED = SealedValue("v1", "abcd1234", b"\x00" * 40)


def _credential(user_id: uuid.UUID, name: str, fingerprint: str) -> Credential:
    return Credential(
        id=uuid.uuid4(),
        user_id=user_id,
        name=name,
        environment="paper",
        api_key=SEALED,
        secret_key=SEALED,
        key_fingerprint=fingerprint,
    )


async def test_session_commits_and_reads_back(database: Database) -> None:
    user = User(id=uuid.uuid4(), name="alice")
    async with database.session(user.id) as session:
        session.add(user)
        await session.flush()
        session.add(_credential(user.id, "paper-1", "k:1"))
    async with database.session(user.id, readonly=True) as session:
        loaded = await session.scalar(select(Credential).where(Credential.user_id == user.id))
    assert loaded is not None
    assert loaded.name == "paper-1"
    assert loaded.api_key == SEALED
    assert loaded.created_at.tzinfo is not None
    assert loaded.is_active is True and loaded.provider == "alpaca"


async def test_session_rolls_back_on_error(database: Database) -> None:
    user_id = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with database.session(user_id) as session:
            session.add(User(id=user_id, name="bob"))
            await session.flush()
            raise RuntimeError("boom")
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


@pytest.mark.postgres
async def test_postgres_session_sets_app_user_id(postgres_databases: PostgresDatabases) -> None:
    database = Database.create(await postgres_databases.create_migrated())
    user_id = uuid.uuid4()
    async with database.session(user_id) as session:
        assert await session.scalar(text("SELECT current_setting('app.user_id', true)")) == str(user_id)
    async with database.session(None) as session:
        assert await session.scalar(text("SELECT current_setting('app.user_id', true)")) == ""
    async with database.connection(user_id, readonly=True) as conn:
        assert await conn.scalar(text("SELECT current_setting('app.user_id', true)")) == str(user_id)
    # Transaction-local: a later transaction on a pooled connection does not inherit it.
    async with database.connection(None) as conn:
        assert await conn.scalar(text("SELECT current_setting('app.user_id', true)")) == ""
    await database.dispose()


async def test_sqlite_connection_pragmas(tmp_path: Path) -> None:
    database = Database.create(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    try:
        for readonly in (False, True):
            async with database.session(readonly=readonly) as session:
                assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
                assert (await session.execute(text("PRAGMA foreign_keys"))).scalar() == 1
                assert (await session.execute(text("PRAGMA busy_timeout"))).scalar() == 5000
    finally:
        await database.dispose()


async def test_deleting_a_user_cascades_to_credentials(database: Database) -> None:
    user = User(id=uuid.uuid4(), name="carol")
    async with database.session(user.id) as session:
        session.add(user)
        await session.flush()
        session.add(_credential(user.id, "a", "k:a"))
    async with database.session(user.id) as session:
        await session.execute(text("DELETE FROM users"))
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(Credential)) == 0


async def test_unique_name_per_user_is_enforced(database: Database) -> None:
    user = User(id=uuid.uuid4(), name="dave")
    async with database.session(user.id) as session:
        session.add(user)
        await session.flush()
        session.add(_credential(user.id, "main", "k:1"))
    with pytest.raises(IntegrityError):
        async with database.session(user.id) as session:
            session.add(_credential(user.id, "main", "k:2"))


async def test_plaintext_cannot_be_bound_to_a_sealed_column(database: Database) -> None:
    user = User(id=uuid.uuid4(), name="erin")
    with pytest.raises(Exception, match="sealed column takes a SealedValue, not str") as caught:
        async with database.session(user.id) as session:
            session.add(user)
            await session.flush()
            cred = _credential(user.id, "x", "k:x")
            cred.secret_key = "PLAINTEXT-SECRET"  # type: ignore[assignment]
            session.add(cred)
    assert "PLAINTEXT-SECRET" not in str(caught.value)


async def test_fifty_concurrent_writers_on_sqlite_do_not_hit_database_is_locked(tmp_path: Path) -> None:
    db = Database.create(f"sqlite+aiosqlite:///{tmp_path / 'v.db'}")
    await upgrade_database(db)
    try:

        async def writer(i: int) -> None:
            user = User(id=uuid.uuid4(), name=f"u{i}")
            async with db.session(user.id) as session:
                # A read first: with a deferred transaction this is where the lock upgrade fails.
                await session.scalar(select(func.count()).select_from(User))
                session.add(user)

        await asyncio.gather(*(writer(i) for i in range(50)))
        async with db.session(readonly=True) as session:
            assert await session.scalar(select(func.count()).select_from(User)) == 50
    finally:
        await db.dispose()


def test_unsupported_url_is_refused_with_what_to_use() -> None:
    with pytest.raises(DatabaseError, match=r"sqlite\+aiosqlite:///PATH"):
        Database.create("mysql+aiomysql://x@y/z")


def test_sqlite_file_and_directory_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "vault.db"
    Database.create(f"sqlite+aiosqlite:///{path}")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


async def test_core_connection_commits_and_rolls_back(database: Database) -> None:
    user_id = uuid.uuid4()
    async with database.connection(user_id) as conn:
        await conn.execute(
            User.__table__.insert(),
            {"id": user_id, "name": "conn", "is_active": True, "created_at": datetime.now(UTC)},
        )
    with pytest.raises(RuntimeError):
        async with database.connection(user_id) as conn:
            await conn.execute(text("DELETE FROM users"))
            raise RuntimeError("abort")
    async with database.connection(user_id, readonly=True) as conn:
        assert await conn.scalar(select(func.count()).select_from(User)) == 1


async def _add_user(database: Database, name: str) -> uuid.UUID:
    user_id = uuid.uuid4()
    async with database.session(user_id) as session:
        session.add(User(id=user_id, name=name))
    return user_id


async def test_read_inline_reads_sqlite_files_and_leaves_postgres_to_the_async_path(
    database: Database,
) -> None:
    user_id = await _add_user(database, "inline")
    statement = select(User.__table__).where(User.__table__.c.id == bindparam("id"))
    rows = database.read_inline(statement, {"id": user_id})
    if database.is_postgres:
        assert rows is None  # RLS and asyncpg: no inline path
    else:
        assert rows is not None and [(row.id, row.name) for row in rows] == [(user_id, "inline")]
        assert rows[0].created_at.tzinfo is not None  # the column types still apply
        assert database.read_inline(statement, {"id": uuid.uuid4()}) == []


async def test_read_inline_never_waits_for_a_lock_and_the_async_path_does(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    database = Database.create(f"sqlite+aiosqlite:///{path}")
    await upgrade_database(database)
    user_id = await _add_user(database, "waits")
    statement = select(User.__table__.c.name).where(User.__table__.c.id == bindparam("id"))
    await database.dispose()  # close our pooled connections so the holder can take the file
    # Another process holds the file exclusively: even WAL readers get "database is locked".
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        assert database.read_inline(statement, {"id": user_id}) is None
        # At once: not after sqlite3's default 5 s busy timeout, which would stall the event loop.
        assert time.monotonic() - started < 2.0

        async def read_async() -> str | None:
            async with database.connection(readonly=True) as conn:
                return await conn.scalar(statement, {"id": user_id})

        waiting = asyncio.create_task(read_async())
        await asyncio.sleep(0.2)
        assert not waiting.done()  # the async path waits (busy_timeout) on its worker thread...
        holder.execute("COMMIT")
        holder.close()
        assert await waiting == "waits"  # ...and reads once the lock is gone
        assert database.read_inline(statement, {"id": user_id}) is not None
    finally:
        holder.close()
        await database.dispose()


async def test_read_inline_connection_writes_only_inside_write_inline_and_never_waits(tmp_path: Path) -> None:
    database = Database.create(f"sqlite+aiosqlite:///{tmp_path / 'ro.db'}")
    await upgrade_database(database)
    insert = f"INSERT INTO users (id, name, is_active, created_at) VALUES ('{uuid.uuid4().hex}', 'y', 1, '2026-01-01')"
    try:
        assert database.read_inline(select(User.__table__), {}) == []  # opens this thread's connection
        connection = database._inline.connections.connection()  # type: ignore[union-attr]
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            connection.execute(insert)
        assert database.write_inline(lambda c: c.execute("PRAGMA busy_timeout").fetchone()) == (0,)
        database.write_inline(lambda c: c.execute(insert))  # autocommit: committed
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):  # and read-only again after
            connection.execute("DELETE FROM users")

        def fails_mid_transaction(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            c.execute("DELETE FROM users")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            database.write_inline(fails_mid_transaction)
        assert not connection.in_transaction  # rolled back, the lock released
        assert [row.name for row in database.read_inline(select(User.__table__), {}) or []] == ["y"]
    finally:
        await database.dispose()


async def test_data_version_changes_with_other_connections_commits_only(tmp_path: Path) -> None:
    """What lets the gate open the row it resolved without reading it again: a token that stays equal
    while only the inline connection (the audit trail's appends) commits, and changes on any other commit."""
    database = Database.create(f"sqlite+aiosqlite:///{tmp_path / 'version.db'}")
    await upgrade_database(database)
    try:
        before = database.data_version()
        assert before is not None
        read = database.read_inline_versioned(select(User.__table__), {})
        assert read == ([], None)  # no row, no version to reuse it by
        database.write_inline(
            lambda c: c.execute(
                f"INSERT INTO users (id, name, is_active, created_at) VALUES ('{uuid.uuid4().hex}', 'y', 1, "
                "'2026-01-01')"
            )
        )
        assert database.data_version() == before
        rows, version = database.read_inline_versioned(select(User.__table__), {}) or ([], None)
        assert [row.name for row in rows] == ["y"] and version == before  # the same, in the read itself
        await _add_user(database, "elsewhere")  # a commit on an aiosqlite connection
        after = database.data_version()
        assert after is not None and after != before
        assert (database.read_inline_versioned(select(User.__table__), {}) or ([], None))[1] == after
        other = sqlite3.connect(tmp_path / "version.db", isolation_level=None)  # another process, say
        other.execute("UPDATE users SET name = 'z' WHERE name = 'y'")
        other.close()
        assert database.data_version() not in (None, after)
    finally:
        await database.dispose()


async def test_read_inline_refuses_what_it_cannot_run_faithfully(tmp_path: Path) -> None:
    path = tmp_path / "strict.db"
    database = Database.create(f"sqlite+aiosqlite:///{path}")
    await upgrade_database(database)
    try:
        by_id = select(User.__table__).where(User.__table__.c.id == bindparam("id"))
        with pytest.raises(ValueError, match="no value for parameter"):  # never a silent NULL
            database.read_inline(by_id, {})
        in_list = select(User.__table__).where(User.__table__.c.name.in_(bindparam("names", expanding=True)))
        with pytest.raises(ValueError, match="IN-list"):
            database.read_inline(in_list, {"names": ["a"]})
        await database.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        assert database.read_inline(by_id, {"id": uuid.uuid4()}) is None  # no file: the async path says so
        assert not path.exists()  # and the inline path did not create one (with the wrong mode)
    finally:
        await database.dispose()
