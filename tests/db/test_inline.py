"""db/inline.py: a write transaction on the calling thread (SQLite files), all or nothing, never waiting."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from alpaca_vault.db import Database, User
from alpaca_vault.db.inline import InlineBusy, write_transaction
from alpaca_vault.db.migrate import upgrade_database

USERS = User.__table__
COUNT = select(func.count().label("n")).select_from(USERS)
NAME_OF = select(USERS.c.name).where(USERS.c.id == bindparam("id"))


async def _users(database: Database) -> int:
    async with database.connection(readonly=True) as conn:
        return int(await conn.scalar(COUNT) or 0)


async def test_writes_on_the_calling_thread_with_the_columns_types_and_defaults(tmp_path: Path) -> None:
    database = Database.create(f"sqlite+aiosqlite:///{tmp_path / 'v.db'}")
    await upgrade_database(database)
    writer = database.inline_writer()
    assert writer is not None
    user_id = uuid.uuid4()

    async def add(conn: Any) -> str | None:
        await conn.execute(insert(User), [{"id": user_id, "name": "inline"}])  # created_at: its default
        return await conn.scalar(NAME_OF, {"id": user_id})  # reads its own write

    try:
        assert writer.run(add) == "inline"
        async with database.session(readonly=True) as session:  # the async path sees the same row
            row = await session.get(User, user_id)
        assert row is not None and row.name == "inline" and row.created_at.tzinfo is not None
    finally:
        await database.dispose()


async def test_all_or_nothing_and_the_async_paths_errors(tmp_path: Path) -> None:
    database = Database.create(f"sqlite+aiosqlite:///{tmp_path / 'v.db'}")
    await upgrade_database(database)
    writer = database.inline_writer()
    assert writer is not None
    taken = uuid.uuid4()

    async def twice(conn: Any) -> None:
        await conn.execute(insert(User), [{"id": uuid.uuid4(), "name": "first"}])
        await conn.execute(insert(User), [{"id": taken, "name": "first"}])  # the same name: unique

    async def suspends(conn: Any) -> None:
        await conn.execute(insert(User), [{"id": uuid.uuid4(), "name": "sleeper"}])
        await asyncio.sleep(0)  # would hold the write lock across other tasks

    try:
        with pytest.raises(IntegrityError):  # SQLAlchemy's class, as on the async path
            writer.run(twice)
        with pytest.raises(RuntimeError, match="must not suspend"):
            writer.run(suspends)
        assert await _users(database) == 0  # neither left a row
    finally:
        await database.dispose()


async def test_a_busy_file_raises_at_once_and_write_transaction_waits_on_the_async_path(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v.db"
    database = Database.create(f"sqlite+aiosqlite:///{path}")
    await upgrade_database(database)
    writer = database.inline_writer()
    assert writer is not None
    ran: list[str] = []

    async def add(conn: Any) -> None:
        ran.append("ran")
        await conn.execute(insert(User), [{"id": uuid.uuid4(), "name": f"u{len(ran)}"}])

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(InlineBusy):
            writer.run(add)
        assert ran == []  # nothing ran: the caller may take the async path
        waiting = asyncio.create_task(write_transaction(database, None, add))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # waits for the lock (busy_timeout) on aiosqlite's thread...
        holder.execute("COMMIT")
        await waiting  # ...and writes once it is free
        assert await _users(database) == 1
    finally:
        holder.close()
        await database.dispose()


async def test_postgres_has_no_inline_path(database: Database) -> None:
    if database.is_sqlite:
        assert database.inline_writer() is not None
        return
    assert database.inline_writer() is None
    user_id = uuid.uuid4()

    async def add(conn: Any) -> None:
        await conn.execute(insert(User), [{"id": user_id, "name": "pg", "created_at": datetime.now(UTC)}])

    await write_transaction(database, None, add)  # on Database.connection
    async with database.connection(readonly=True) as conn:
        assert await conn.scalar(NAME_OF, {"id": user_id}) == "pg"
