"""Async engine and per-user transactions for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Executable, create_engine, event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 5000
# Execution option a read-only session sets on SQLite: no BEGIN, each SELECT reads the latest commit.
_SQLITE_READ_ONLY = "alpaca_vault_sqlite_read_only"


class DatabaseError(Exception):
    """The database cannot be used as configured; the message says what to do."""


def sqlite_path(url: str) -> Path | None:
    """The file behind an SQLite URL, or None for PostgreSQL and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def _prepare_sqlite_file(path: Path) -> None:
    # The vault file holds only ciphertext, but nobody else needs to read it either.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _install_sqlite_pragmas(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Driver-level autocommit: we emit BEGIN ourselves (below) so we can choose IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    dialect = sync_engine.dialect
    driver_commit, driver_rollback = dialect.do_commit, dialect.do_rollback

    def _in_transaction(dbapi_connection: Any) -> bool:
        # aiosqlite reads this flag without a trip to its worker thread.
        return bool(getattr(dbapi_connection, "_connection", dbapi_connection).in_transaction)

    def do_commit(dbapi_connection: Any) -> None:
        # A read-only session never sent BEGIN: no COMMIT to send (and no thread hop to pay).
        if _in_transaction(dbapi_connection):
            driver_commit(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        if _in_transaction(dbapi_connection):
            driver_rollback(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # SQLite upgrades a deferred read transaction to a write one without calling
        # the busy handler, so concurrent writers would fail with "database is locked".
        # Writers take the write lock up front (BEGIN IMMEDIATE waits busy_timeout).
        # Read-only sessions skip BEGIN altogether: with the driver in autocommit, each SELECT
        # is its own snapshot, and an open costs a few thread hops fewer.
        if not conn.get_execution_options().get(_SQLITE_READ_ONLY, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _inline_reader(path: Path) -> Engine:
    """A synchronous engine on the same SQLite file, for :meth:`Database.read_inline`.

    Its connections can only read (``query_only``) and never wait for a lock
    (``busy_timeout = 0``): a read that would have to wait fails at once and the
    caller takes the async path, so the event loop is never held up by another writer.
    """
    engine = create_engine(
        f"sqlite:///{path}",
        hide_parameters=True,
        # Only the event loop's thread uses a connection, one statement at a time; the pool may
        # hand it to another loop's thread later, which sqlite3 would otherwise refuse.
        connect_args={"check_same_thread": False},
        pool_reset_on_return=None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit: each SELECT reads the latest commit
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 0")
        cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    return engine


class Database:
    """One database (engine + session factory). Sessions are single transactions."""

    def __init__(self, url: str, engine: AsyncEngine) -> None:
        self.url = url
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
        self.schema_checked = False
        path = sqlite_path(url) if self.is_sqlite else None
        self._inline: Engine | None = _inline_reader(path) if path is not None else None

    @classmethod
    def create(cls, url: str, **engine_options: Any) -> Database:
        """Open ``sqlite+aiosqlite:///PATH`` or ``postgresql+asyncpg://...`` (no I/O until first use)."""
        backend = make_url(url).get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise DatabaseError(
                "Unsupported database URL: use sqlite+aiosqlite:///PATH or "
                "postgresql+asyncpg://USER:PASSWORD@HOST/DB"
            )
        path = sqlite_path(url)
        if path is not None:
            _prepare_sqlite_file(path)
        # SQLAlchemy errors would otherwise quote bound parameters (sealed tokens, names) in messages.
        engine_options.setdefault("hide_parameters", True)
        if backend == "postgresql":
            engine_options.setdefault("pool_pre_ping", True)
        else:
            # The driver runs in autocommit and every transaction is our explicit BEGIN, which
            # the Connection itself ends; the pool's extra ROLLBACK would be one more thread hop.
            engine_options.setdefault("pool_reset_on_return", None)
        engine = create_async_engine(url, **engine_options)
        if backend == "sqlite":
            _install_sqlite_pragmas(engine)
        return cls(url, engine)

    def session(
        self, user_id: uuid.UUID | None = None, *, readonly: bool = False
    ) -> AbstractAsyncContextManager[AsyncSession]:
        """One transaction: commit on success, rollback on error.

        On PostgreSQL, ``app.user_id`` is set for the transaction (row-level security
        policies read it). On SQLite the default takes the write lock up front
        (BEGIN IMMEDIATE, waiting up to the busy timeout); ``readonly=True`` never
        waits for writers and runs each SELECT on its own (no multi-statement snapshot).
        """
        return self._session(user_id, readonly)

    @asynccontextmanager
    async def _session(self, user_id: uuid.UUID | None, readonly: bool) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            if self.is_sqlite and readonly:
                await session.connection(execution_options={_SQLITE_READ_ONLY: True})
            elif self.is_postgres:
                await session.execute(
                    text("SELECT set_config('app.user_id', :uid, true)"),
                    {"uid": "" if user_id is None else str(user_id)},
                )
            yield session

    def connection(
        self, user_id: uuid.UUID | None = None, *, readonly: bool = False
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """Like :meth:`session` (same transaction rules), for Core statements on hot paths."""
        return self._connection(user_id, readonly)

    @asynccontextmanager
    async def _connection(self, user_id: uuid.UUID | None, readonly: bool) -> AsyncIterator[AsyncConnection]:
        options = {_SQLITE_READ_ONLY: True} if self.is_sqlite and readonly else {}
        async with self.engine.connect() as conn:
            if options:
                await conn.execution_options(**options)
            async with conn.begin():
                if self.is_postgres:
                    await conn.execute(
                        text("SELECT set_config('app.user_id', :uid, true)"),
                        {"uid": "" if user_id is None else str(user_id)},
                    )
                yield conn

    def read_inline(self, statement: Executable, params: dict[str, Any]) -> Sequence[Row[Any]] | None:
        """Run a small read on the calling thread, or return None if it has to go the async way.

        Why: aiosqlite runs every step of a query on its worker thread, and each of the
        four hops of a one-row lookup costs a thread wake-up (about 0.2 ms on a small
        machine), far more than the read itself (tens of microseconds from the page
        cache). On an SQLite file in WAL mode a reader never waits for writers, so the
        read is safe to run inline. None for PostgreSQL and in-memory SQLite, and when
        the read would have to wait for a lock; use :meth:`connection` then. The
        statement gets no per-user scoping beyond its own ``WHERE user_id`` (SQLite has no RLS).
        """
        if self._inline is None:
            return None
        try:
            with self._inline.connect() as conn:
                return conn.execute(statement, params).fetchall()
        except sa_exc.OperationalError:  # locked or busy: let the async path wait for it
            return None

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._inline is not None:
            self._inline.dispose()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"
