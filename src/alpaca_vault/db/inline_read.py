"""The inline read path of an SQLite file: plain ``sqlite3`` connections, one per thread, that run
module-level SELECTs compiled once by SQLAlchemy (``Database.read_inline``; db/inline.py builds its
writes on the same pieces).

Why it exists: aiosqlite runs every step of a query on its worker thread, and each hop costs a thread
wake-up (about 0.2 ms on a small machine), far more than a one-row read from the page cache.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import namedtuple
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import CompoundSelect, Select, Update
from sqlalchemy.engine import Dialect

# What the inline paths read: a SELECT, or a UNION of SELECTs (#14: the guard's duplicate window).
ReadStatement = Select[*tuple[Any, ...]] | CompoundSelect[*tuple[Any, ...]]
# Enough for every module-level statement that uses the inline path, with room to spare.
_MAX_COMPILED_READS = 64


class CompiledRead:
    """One SELECT compiled once for SQLite: its SQL, how to bind each parameter, how to load each column.
    (Also an UPDATE for db/inline.py: no columns to load.)"""

    def __init__(self, statement: ReadStatement | Update, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("read_inline cannot run IN-list (expanding) parameters; use Database.connection")
        self.sql = compiled.string
        self.defaults = compiled.params  # values compiled into the statement (e.g. its LIMIT)
        self.names = compiled.positiontup or []
        # A literal the statement fixes (aggregate_strings' separator) is rendered into the SQL when it
        # runs; render it now. Without this SQLite saw "__[POSTCOMPILE_...]" and the read fell back.
        for bind in compiled.literal_execute_params:
            name = compiled.bind_names[bind]
            literal = compiled.render_literal_value(bind.value, bind.type)
            self.sql = self.sql.replace(f"__[POSTCOMPILE_{name}]", literal)
            self.names = [n for n in self.names if n != name]
        self.required = frozenset(n for n in self.names if compiled.binds[n].required)
        self.binders = [
            compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in self.names
        ]
        columns = list(statement.selected_columns) if not isinstance(statement, Update) else []
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


class ThreadConnections:
    """One plain ``sqlite3`` connection per thread to one SQLite file, each set up by ``pragmas`` (and
    ``authorizer``), all closed together: what the inline reader holds."""

    def __init__(
        self, path: Path, pragmas: Sequence[str], authorizer: Callable[..., int] | None = None
    ) -> None:
        self._path = path
        self._pragmas = tuple(pragmas)
        self._authorizer = authorizer
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # check_same_thread=False only so close() may run on another thread; each thread uses its own.
            # mode=rw: never create the file (Database.create made it, 0600; a missing one is an error).
            connection = sqlite3.connect(
                f"{self._path.resolve().as_uri()}?mode=rw",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                for pragma in self._pragmas:
                    connection.execute(pragma)
            except sqlite3.Error:  # e.g. busy: the file is held while another connection closes it
                connection.close()
                raise
            if self._authorizer is not None:
                connection.set_authorizer(self._authorizer)
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


# What the inline connection may prepare outside Database.write_inline: reads, and PRAGMA data_version.
_INLINE_READS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)


class InlineReader:
    """Reads the SQLite file on the calling thread, for :meth:`Database.read_inline`.

    One plain ``sqlite3`` connection per thread (the event loop's, in practice) that
    can only read, except inside :meth:`Database.write_inline`, and never waits for a
    lock (``busy_timeout = 0``): a read that would have to wait fails at once and the
    caller takes the async path. Statements are compiled once by SQLAlchemy and keep
    its column types.
    """

    def __init__(self, path: Path, dialect: Dialect) -> None:
        self._dialect = dialect
        self._compiled: dict[ReadStatement, CompiledRead] = {}
        self.writing = threading.local()  # .on: this thread is inside write_inline
        # An authorizer, not PRAGMA query_only: switching that pragma re-prepares every cached statement
        # (it tripled the next read's cost). It is asked once per statement, when sqlite3 prepares it.
        # synchronous NORMAL as on every connection: write_inline commits here; and never a checkpoint
        # inside those commits, on the event loop's thread (db/checkpoint.py does them).
        self.connections = ThreadConnections(
            path,
            ("PRAGMA busy_timeout = 0", "PRAGMA synchronous = NORMAL", "PRAGMA wal_autocheckpoint = 0"),
            self._authorize,
        )

    def _authorize(self, action: int, arg1: str | None, *_: Any) -> int:
        if action in _INLINE_READS or getattr(self.writing, "on", False):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and arg1 == "data_version":
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    def read(self, statement: ReadStatement, params: dict[str, Any]) -> list[Any]:
        compiled = self._compiled.get(statement)
        if compiled is None:
            if len(self._compiled) >= _MAX_COMPILED_READS:  # statements built per call would pile up
                self._compiled.clear()
            compiled = self._compiled[statement] = CompiledRead(statement, self._dialect)
        return compiled.run(self.connections.connection(), params)

    def close(self) -> None:
        self.connections.close()
