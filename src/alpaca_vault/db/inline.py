"""One short write transaction run to completion on the calling thread, for SQLite files (#14).

Why: through aiosqlite every statement of a transaction is several hops to its worker thread
(about 0.2 ms each on a small machine); the trading guard's transaction (BEGIN IMMEDIATE, the
policy, the counters, the intent insert and its audit event) took about 19 of them, far more
than the statements themselves cost. Here the same statements run on a plain ``sqlite3``
connection of the calling thread, in one step.

The transaction is the caller's own coroutine, given an :class:`InlineConnection`: the subset
of SQLAlchemy's ``AsyncConnection`` those statements use (``execute``, ``scalar``, ``dialect``),
whose methods never suspend. So the very code that runs on ``Database.connection`` (one copy
of the rules) runs here too; :meth:`InlineWriter.run` drives it in a single ``send`` and refuses
a transaction that would suspend (it would hold the file's write lock across other tasks).

The write lock is the same one every other writer takes (BEGIN IMMEDIATE), so serialisation
is unchanged. The connection never waits for it (``busy_timeout = 0``): when the file is busy,
``run`` raises :class:`InlineBusy` before anything ran and the caller takes the async path,
which waits like every other writer.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import CompoundSelect, Insert, Select, Update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound

from alpaca_vault.db.engine import sqlite_busy
from alpaca_vault.db.inline_read import CompiledRead, ThreadConnections

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from alpaca_vault.db.engine import Database

T = TypeVar("T")
# Statements are module-level constants (selects) or plain ``insert(Table)`` (keyed by their columns).
_MAX_COMPILED = 64


async def write_transaction(
    db: Database, user_id: uuid.UUID | None, transaction: Callable[[AsyncConnection], Coroutine[Any, Any, T]]
) -> T:
    """``transaction`` in one write transaction: inline on an SQLite file whose write lock is free, else
    on :meth:`Database.connection` (PostgreSQL, or a busy file: it waits there like every writer).

    ``transaction`` must only run statements on the connection it is given (no other awaits)."""
    writer = db.inline_writer()
    if writer is not None:
        try:
            # The inline connection has the few AsyncConnection methods such transactions use.
            return writer.run(lambda inline: transaction(cast("AsyncConnection", inline)))
        except InlineBusy:
            pass
    async with db.connection(user_id) as connection:
        return await transaction(connection)


async def write_in_passing(
    db: Database, user_id: uuid.UUID | None, statement: Update, params: dict[str, Any]
) -> bool:
    """One bookkeeping UPDATE (a last-use time) that must never hold up the call it rides on: on an SQLite
    file, inline and only if the write lock is free right now (False: skipped, nothing written; a later
    call records it); on PostgreSQL, its own short transaction (True).

    Why: through aiosqlite the UPDATE held the file's write lock across three trips through the event
    loop; under 32 concurrent HTTP clients such writes queued behind each other for seconds, and the
    audit appends of every other call waited behind them.
    """
    writer = db.inline_writer()
    if writer is not None:
        try:
            writer.run(lambda connection: connection.execute(statement, params))
        except InlineBusy:
            return False
        return True
    async with db.connection(user_id) as connection:
        await connection.execute(statement, params)
    return True


class InlineBusy(Exception):
    """The SQLite file's write lock is held elsewhere; nothing ran: use the async path."""


class InlineRows:
    """The rows of one statement, with the few ``Result`` methods the transactions use."""

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any | None:
        return self._rows[0] if self._rows else None

    def one_or_none(self) -> Any | None:
        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when one or none was required")
        return self.first()

    def one(self) -> Any:
        if not self._rows:
            raise NoResultFound("No row was found when one was required")
        return self.one_or_none()

    def scalar(self) -> Any | None:
        row = self.first()
        return None if row is None else row[0]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class _CompiledInsert:
    """A plain ``insert(Table)`` for one set of columns: its SQL, binders and the columns' Python defaults."""

    def __init__(self, statement: Insert, keys: Sequence[str], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = compiled.string
        self.names = list(compiled.positiontup or [])
        self.binders = [
            compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in self.names
        ]
        # Columns the rows leave out that have a Python default (an id, created_at), as SQLAlchemy fills them.
        self.defaults = {c.key: c.default for c in compiled.insert_prefetch if c.default is not None}

    def run(self, connection: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            values = dict(row)
            for key, default in self.defaults.items():
                if key not in values:
                    values[key] = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
            args = [
                bind(values[n]) if bind else values[n]
                for n, bind in zip(self.names, self.binders, strict=True)
            ]
            connection.execute(self.sql, args)


class _CompiledUpdate(CompiledRead):
    """An UPDATE with bind parameters: as a read (no rows back), plus the columns' ``onupdate`` defaults
    (``updated_at``), filled in as SQLAlchemy fills them on the async path."""

    def __init__(self, statement: Update, dialect: Dialect) -> None:
        super().__init__(statement, dialect)
        compiled = statement.compile(dialect=dialect)
        self.onupdate = {c.key: c.onupdate for c in compiled.update_prefetch if c.onupdate is not None}

    def run(self, connection: sqlite3.Connection, params: dict[str, Any]) -> list[Any]:
        values = dict(params)
        for key, default in self.onupdate.items():
            if key not in values:
                values[key] = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
        return super().run(connection, values)


class InlineConnection:
    """What a transaction coroutine is given on the inline path (see the module docstring)."""

    def __init__(self, writer: InlineWriter, connection: sqlite3.Connection) -> None:
        self._writer = writer
        self._connection = connection
        self.dialect = writer.dialect

    async def execute(
        self, statement: Any, params: dict[str, Any] | list[dict[str, Any]] | None = None
    ) -> InlineRows:
        return self._writer.execute(self._connection, statement, params)

    async def scalar(self, statement: Any, params: dict[str, Any] | None = None) -> Any:
        return self._writer.execute(self._connection, statement, params).scalar()


class InlineWriter:
    """Write transactions on one SQLite file, on the calling thread (one ``sqlite3`` connection per thread)."""

    def __init__(self, path: Path, dialect: Dialect, committed: Callable[[], None] | None = None) -> None:
        self.dialect = dialect
        self._compiled: dict[Any, CompiledRead | _CompiledInsert] = {}
        # The engine's pragmas (foreign keys checked as on the async path), but never wait for the lock,
        # and never checkpoint inside a commit on this thread: ``committed`` is told instead
        # (db/checkpoint.py).
        self.connections = ThreadConnections(
            path,
            (
                "PRAGMA busy_timeout = 0",
                "PRAGMA foreign_keys = ON",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA wal_autocheckpoint = 0",
            ),
        )
        self._committed = committed

    def run(self, transaction: Callable[[InlineConnection], Coroutine[Any, Any, T]]) -> T:
        """Run ``transaction`` in one BEGIN IMMEDIATE ... COMMIT; raises InlineBusy when the file is busy.

        An exception from the transaction rolls it back and propagates (nothing is written)."""
        connection = self.connections.connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if sqlite_busy(exc):  # another writer has the file: nothing ran
                raise InlineBusy from None
            raise DBAPIError.instance(
                "BEGIN IMMEDIATE", None, exc, sqlite3.Error, hide_parameters=True
            ) from None
        try:
            coroutine = transaction(InlineConnection(self, connection))
            try:
                coroutine.send(None)
            except StopIteration as done:
                result: T = done.value
            else:  # it awaited something real: it would hold the write lock across other tasks
                coroutine.close()
                raise RuntimeError("an inline transaction must not suspend; use Database.connection")
            try:
                connection.execute("COMMIT")
            except sqlite3.Error as exc:  # as the async path would raise it
                raise DBAPIError.instance("COMMIT", None, exc, sqlite3.Error, hide_parameters=True) from None
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        if self._committed is not None:
            self._committed()  # (never raises: the transaction has committed)
        return result

    def execute(
        self,
        connection: sqlite3.Connection,
        statement: Any,
        params: dict[str, Any] | list[dict[str, Any]] | None,
    ) -> InlineRows:
        try:
            if isinstance(statement, Select | CompoundSelect):
                assert not isinstance(params, list)
                read = self._compile(statement, lambda: CompiledRead(statement, self.dialect))
                assert isinstance(read, CompiledRead)
                return InlineRows(read.run(connection, params or {}))
            if isinstance(statement, Insert):
                # Compiled once per (table, columns): so only a plain insert(Table), whose rows are all it says.
                if getattr(statement, "_values", None) or getattr(statement, "_multi_values", None):
                    raise TypeError("the inline path takes insert(Table) with its rows as parameters")
                if getattr(statement, "_returning", ()):  # (exported_columns would say so, at 15 us a call)
                    raise TypeError("the inline path returns no rows from an insert (RETURNING)")
                rows = params if isinstance(params, list) else [params or {}]
                keys = tuple(sorted(rows[0]))
                insert = self._compile(
                    (statement.table, keys), lambda: _CompiledInsert(statement, keys, self.dialect)
                )
                assert isinstance(insert, _CompiledInsert)
                insert.run(connection, rows)
                return InlineRows([])
            if isinstance(statement, Update):
                # A module-level UPDATE with bind parameters (bookkeeping such as a last-use time).
                if getattr(statement, "_returning", ()):
                    raise TypeError("the inline path returns no rows from an update (RETURNING)")
                assert not isinstance(params, list)
                update = self._compile(statement, lambda: _CompiledUpdate(statement, self.dialect))
                assert isinstance(update, _CompiledUpdate)
                update.run(connection, params or {})
                return InlineRows([])
        except sqlite3.Error as exc:
            # The same exception classes the async path raises (IntegrityError, OperationalError, ...),
            # without the bound values (they may be names or sealed tokens).
            raise DBAPIError.instance(
                str(statement), None, exc, sqlite3.Error, hide_parameters=True
            ) from None
        raise TypeError(
            f"the inline path runs SELECTs, plain inserts and updates only, not {type(statement).__name__}"
        )

    def _compile(
        self, key: Any, build: Callable[[], CompiledRead | _CompiledInsert]
    ) -> CompiledRead | _CompiledInsert:
        compiled = self._compiled.get(key)
        if compiled is None:
            if len(self._compiled) >= _MAX_COMPILED:  # statements built per call would pile up
                self._compiled.clear()
            compiled = self._compiled[key] = build()
        return compiled

    def close(self) -> None:
        self.connections.close()
