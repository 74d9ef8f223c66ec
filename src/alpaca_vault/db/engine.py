"""Async engine and per-user transactions for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections import namedtuple
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Select, event, make_url, text
from sqlalchemy.engine import Connection, Dialect
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


# Enough for every module-level statement that uses the inline path, with room to spare.
_MAX_COMPILED_READS = 64


class _CompiledRead:
    """One SELECT compiled once for SQLite: its SQL, how to bind each parameter, how to load each column."""

    def __init__(self, statement: Select[*tuple[Any, ...]], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("read_inline cannot run IN-list (expanding) parameters; use Database.connection")
        self.sql = compiled.string
        self.defaults = compiled.params  # values compiled into the statement (e.g. its LIMIT)
        self.names = compiled.positiontup or []
        self.required = frozenset(n for n in self.names if compiled.binds[n].required)
        self.binders = [
            compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in self.names
        ]
        columns = list(statement.selected_columns)
        self.loaders = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        self.row: Any = namedtuple("Row", [c.key for c in columns])  # type: ignore[misc]  # row.name, like a Row

    def run(self, connection: sqlite3.Connection, params: dict[str, Any]) -> list[Any]:
        if missing := self.required - params.keys():  # as SQLAlchemy would: never bind None silently
            raise ValueError(f"read_inline: no value for parameter(s) {', '.join(sorted(missing))}")
        values = {**self.defaults, **params}
        args = [
            bind(values[n]) if bind else values[n] for n, bind in zip(self.names, self.binders, strict=True)
        ]
        return [
            self.row._make([load(v) if load else v for v, load in zip(raw, self.loaders, strict=True)])
            for raw in connection.execute(self.sql, args).fetchall()
        ]


class _InlineReader:
    """Reads the SQLite file on the calling thread, for :meth:`Database.read_inline`.

    One plain ``sqlite3`` connection per thread (the event loop's, in practice) that
    can only read (``query_only``) and never waits for a lock (``busy_timeout = 0``):
    a read that would have to wait fails at once and the caller takes the async path.
    Statements are compiled once by SQLAlchemy and keep its column types.
    """

    def __init__(self, path: Path, dialect: Dialect) -> None:
        self._path = path
        self._dialect = dialect
        self._compiled: dict[Select[*tuple[Any, ...]], _CompiledRead] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []

    def read(self, statement: Select[*tuple[Any, ...]], params: dict[str, Any]) -> list[Any]:
        compiled = self._compiled.get(statement)
        if compiled is None:
            if len(self._compiled) >= _MAX_COMPILED_READS:  # statements built per call would pile up
                self._compiled.clear()
            compiled = self._compiled[statement] = _CompiledRead(statement, self._dialect)
        return compiled.run(self._connection(), params)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # check_same_thread=False only so close() may run on another thread; each thread reads on its own.
            # mode=rw: never create the file (Database.create made it, 0600; a missing one is an error).
            connection = sqlite3.connect(
                f"{self._path.resolve().as_uri()}?mode=rw",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA busy_timeout = 0")
            connection.execute("PRAGMA query_only = ON")
            with self._lock:
                self._connections.append(connection)
            self._local.connection = connection
        return connection

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for connection in connections:
            connection.close()


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
        self._inline = _InlineReader(path, engine.dialect) if path is not None else None

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

    def read_inline(
        self, statement: Select[*tuple[Any, ...]], params: dict[str, Any]
    ) -> Sequence[Any] | None:
        """Run a small SELECT on the calling thread; None means "use :meth:`connection` instead".

        Why: aiosqlite runs every step of a query on its worker thread, and each of the
        four hops of a one-row lookup costs a thread wake-up (about 0.2 ms on a small
        machine), far more than the read itself (tens of microseconds from the page
        cache). On an SQLite file in WAL mode a reader does not wait for writers, so the
        read is safe to run inline. None for PostgreSQL (asyncpg has no thread hops, and
        RLS needs the session's ``app.user_id``), for in-memory SQLite, and whenever the
        read would have to wait for a lock. ``statement`` should be a module-level
        constant: it is compiled once and cached. Rows are named tuples (``row.name``),
        with the columns' types applied; scoping to a user is the statement's own
        ``WHERE user_id`` (SQLite has no RLS).
        """
        if self._inline is None:
            return None
        try:
            return self._inline.read(statement, params)
        except sqlite3.OperationalError:  # locked or busy (or a write): let the async path handle it
            return None

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._inline is not None:
            self._inline.close()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"
