"""Async engine and per-user transactions for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import ipaddress
import os
import sqlite3
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from sqlalchemy import Select, event, make_url, text
from sqlalchemy.engine import URL, Connection, Dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from alpaca_vault.db.checkpoint import WalCheckpointer
from alpaca_vault.db.inline_read import InlineReader, ReadStatement

if TYPE_CHECKING:
    from alpaca_vault.db.inline import InlineWriter

SQLITE_BUSY_TIMEOUT_MS = 5000
# Execution option a read-only session sets on SQLite: no BEGIN, each SELECT reads the latest commit.
_SQLITE_READ_ONLY = "alpaca_vault_sqlite_read_only"
# What Database.data_version returns: the inline connection it was read on, and SQLite's counter.
DataVersion = tuple[sqlite3.Connection, int]
T = TypeVar("T")


class DatabaseError(Exception):
    """The database cannot be used as configured; the message says what to do."""


# --- #16 TLS to PostgreSQL ----------------------------------------------------------------------

SslMode = Literal["disable", "require", "verify-ca", "verify-full"]
SSL_MODES: tuple[SslMode, ...] = ("disable", "require", "verify-ca", "verify-full")
_URL_SSL_PARAMETERS = ("sslmode", "ssl")


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach PostgreSQL: TLS and pool behaviour (ignored for SQLite).

    ``sslmode`` None means: ``verify-full`` for a host that is not loopback, ``disable`` for
    loopback and Unix sockets (nothing leaves the machine). ``ca_file`` None verifies against
    the system's trust store. ``allow_plaintext`` is the explicit opt-out that lets a password
    travel in cleartext to a host that is not loopback.
    """

    sslmode: SslMode | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    allow_plaintext: bool = False
    pool_pre_ping: bool = True
    pool_recycle_seconds: int = 1800


def _is_local_host(host: str | None) -> bool:
    """Loopback names and addresses, and Unix socket directories (or no host at all: the default socket)."""
    if not host or host.startswith("/"):
        return True
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _hosts(url: URL) -> list[str | None]:
    query_host = url.query.get("host")
    hosts: list[str | None] = [url.host]
    if query_host is not None:
        hosts += [query_host] if isinstance(query_host, str) else list(query_host)
    return hosts


def _mode_from_url(url: URL) -> tuple[URL, SslMode | None]:
    """Take ``sslmode``/``ssl`` out of the URL (providers put it there); the TLS context is ours to build."""
    found: SslMode | None = None
    for name in _URL_SSL_PARAMETERS:
        value = url.query.get(name)
        if value is None:
            continue
        text_value = value if isinstance(value, str) else value[-1]
        aliases = {"prefer": "require", "allow": "disable", "true": "require", "false": "disable"}
        mode = aliases.get(text_value, text_value)
        if mode not in SSL_MODES:
            raise DatabaseError(
                f"ALPACA_VAULT_DATABASE_URL: unsupported {name}={text_value!r}; use one of "
                f"{', '.join(SSL_MODES)} (or ALPACA_VAULT_DATABASE_SSLMODE)."
            )
        found = mode
    return url.difference_update_query(_URL_SSL_PARAMETERS), found


def _tls_context(mode: SslMode, settings: ConnectionSettings) -> ssl.SSLContext | Literal[False]:
    if mode == "disable":
        return False
    try:
        if mode == "require":
            # Encrypted, not authenticated (libpq's require): no CA check, no host name check.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(
                cafile=str(settings.ca_file) if settings.ca_file is not None else None
            )
            context.check_hostname = mode == "verify-full"
        if settings.cert_file is not None:
            context.load_cert_chain(
                str(settings.cert_file), str(settings.key_file) if settings.key_file is not None else None
            )
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise DatabaseError(
            "Cannot set up TLS to the database: the CA bundle (ALPACA_VAULT_DATABASE_SSL_CA) or the client "
            f"certificate and key (ALPACA_VAULT_DATABASE_SSL_CERT / _SSL_KEY) cannot be read: {reason}."
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _explain_connect_error(exc: BaseException, mode: SslMode, settings: ConnectionSettings) -> str | None:
    """A clear sentence for the TLS failures an operator can fix; None for anything else."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        against = f"the CA bundle {settings.ca_file}" if settings.ca_file else "the system's trusted CAs"
        detail = exc.verify_message or "certificate verify failed"
        return (
            f"The database server's TLS certificate was refused (sslmode={mode}): {detail}. It must be issued "
            f"by a CA in {against} (ALPACA_VAULT_DATABASE_SSL_CA)"
            + (" and name the host in the database URL." if mode == "verify-full" else ".")
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS with the database server failed (sslmode={mode}): {exc.reason or type(exc).__name__}."
    message = str(exc)
    if "rejected SSL upgrade" in message or "server does not support SSL" in message:
        return (
            f"The database server does not offer TLS, and sslmode={mode} requires it. Enable ssl on the "
            "server, or (for a loopback or trusted private network only) set ALPACA_VAULT_DATABASE_SSLMODE=disable."
        )
    if mode == "disable" and ("no encryption" in message or "SSL off" in message):
        return (
            "The database server accepts only TLS connections, and ALPACA_VAULT_DATABASE_SSLMODE is disable. "
            "Set ALPACA_VAULT_DATABASE_SSLMODE=verify-full and ALPACA_VAULT_DATABASE_SSL_CA to the server's CA."
        )
    if "certificate" in message.lower() and "client" in message.lower():
        return (
            f"The database server requires a client certificate it trusts: {message.splitlines()[0]} "
            "(ALPACA_VAULT_DATABASE_SSL_CERT and ALPACA_VAULT_DATABASE_SSL_KEY)."
        )
    return None


def _postgres_options(url: str, settings: ConnectionSettings, engine_options: dict[str, Any]) -> URL:
    """Refuse cleartext credentials to a remote host; put the TLS context and pool settings in place."""
    parsed, url_mode = _mode_from_url(make_url(url))
    if url_mode is not None and settings.sslmode is not None and url_mode != settings.sslmode:
        raise DatabaseError(
            f"The database URL says sslmode={url_mode} but ALPACA_VAULT_DATABASE_SSLMODE is {settings.sslmode}; "
            "set one of them."
        )
    local = all(_is_local_host(host) for host in _hosts(parsed))
    mode: SslMode = settings.sslmode or url_mode or ("disable" if local else "verify-full")
    if mode == "disable" and not local and not settings.allow_plaintext:
        raise DatabaseError(
            f"Refusing to send the database credentials in cleartext to {parsed.host}: TLS is disabled "
            "(sslmode=disable) for a host that is not loopback. Set ALPACA_VAULT_DATABASE_SSLMODE=verify-full "
            "(with ALPACA_VAULT_DATABASE_SSL_CA for a private CA), or, only on a network you trust, "
            "ALPACA_VAULT_DATABASE_ALLOW_PLAINTEXT=true."
        )
    if (settings.cert_file is None) != (settings.key_file is None):
        raise DatabaseError(
            "Set both ALPACA_VAULT_DATABASE_SSL_CERT and ALPACA_VAULT_DATABASE_SSL_KEY (a client certificate "
            "needs its key), or neither."
        )
    context = _tls_context(mode, settings)
    connect_args = dict(engine_options.pop("connect_args", {}))
    connect_args["ssl"] = context
    engine_options["connect_args"] = connect_args
    engine_options.setdefault("pool_pre_ping", settings.pool_pre_ping)
    if settings.pool_recycle_seconds > 0:
        engine_options.setdefault("pool_recycle", settings.pool_recycle_seconds)
    engine_options["_alpaca_vault_sslmode"] = mode
    return parsed


def _install_connect_errors(engine: AsyncEngine, mode: SslMode, settings: ConnectionSettings) -> None:
    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            explained = _explain_connect_error(exc, mode, settings)
            if explained is None:
                raise
            raise DatabaseError(explained) from None


def sqlite_path(url: str) -> Path | None:
    """The file behind an SQLite URL, or None for PostgreSQL and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def sqlite_busy(exc: sqlite3.OperationalError) -> bool:
    """The file's lock is held by another writer (worth another try), not a file we cannot write."""
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


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


class Database:
    """One database (engine + session factory). Sessions are single transactions."""

    def __init__(self, url: str, engine: AsyncEngine) -> None:
        self.url = url
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
        self.schema_checked = False
        self.sslmode: SslMode | None = None  # PostgreSQL: the TLS mode in effect
        path = sqlite_path(url) if self.is_sqlite else None
        self._inline = InlineReader(path, engine.dialect) if path is not None else None
        self._sqlite_file = path
        # The inline connections' commits, checkpointed off the event loop's thread (db/checkpoint.py).
        self._checkpoints = WalCheckpointer(path) if path is not None else None
        self._writer: InlineWriter | None = None  # db/inline.py, made on first use

    @classmethod
    def create(
        cls, url: str, connection: ConnectionSettings | None = None, **engine_options: Any
    ) -> Database:
        """Open ``sqlite+aiosqlite:///PATH`` or ``postgresql+asyncpg://...`` (no I/O until first use).

        ``connection`` (PostgreSQL only): TLS and pool settings; the default verifies the server
        (verify-full) for any host that is not loopback, and refuses cleartext credentials to one.
        """
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
        settings = connection or ConnectionSettings()
        engine_url: str | URL = url
        sslmode: SslMode | None = None
        if backend == "postgresql":
            engine_url = _postgres_options(url, settings, engine_options)
            sslmode = engine_options.pop("_alpaca_vault_sslmode")
        else:
            # The driver runs in autocommit and every transaction is our explicit BEGIN, which
            # the Connection itself ends; the pool's extra ROLLBACK would be one more thread hop.
            engine_options.setdefault("pool_reset_on_return", None)
        engine = create_async_engine(engine_url, **engine_options)
        if backend == "sqlite":
            _install_sqlite_pragmas(engine)
        if sslmode is not None:
            _install_connect_errors(engine, sslmode, settings)
        db = cls(url, engine)
        db.sslmode = sslmode
        return db

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

    def read_inline(self, statement: ReadStatement, params: dict[str, Any]) -> Sequence[Any] | None:
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

    def write_inline(self, work: Callable[[sqlite3.Connection], T]) -> T | None:
        """Run ``work`` on the calling thread's inline connection (the one :meth:`read_inline` reads on)
        with writes allowed; None when there is none (PostgreSQL, in-memory SQLite, no file), or when it
        cannot be opened yet because another connection holds the file (busy: try again shortly).

        For the audit trail's per-call append (audit/log.py). Why the reader's connection: SQLite drops a
        connection's page cache whenever another connection has committed, so writes on a connection of
        their own made the next inline read re-read its pages; and :meth:`data_version` does not count
        this connection's own commits. ``work`` issues its own statements (a lock it cannot get fails at
        once: busy_timeout 0) and must end its transaction; one an exception leaves open is rolled back.
        """
        if self._inline is None:
            return None
        try:
            connection = self._inline.connections.connection()
        except sqlite3.OperationalError as exc:
            if sqlite_busy(exc):  # held while opening (another connection closing the file): try again
                return None
            raise  # a file it cannot open: not "busy"
        writing = self._inline.writing
        writing.on = True  # the authorizer lets this thread's statements write until we leave
        try:
            result = work(connection)
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            writing.on = False
        if result is not None and self._checkpoints is not None:
            self._checkpoints.committed()  # (None: the work found the file busy and wrote nothing)
        return result

    def read_inline_versioned(
        self, statement: Select[*tuple[Any, ...]], params: dict[str, Any]
    ) -> tuple[Sequence[Any], DataVersion | None] | None:
        """:meth:`read_inline`, and the :meth:`data_version` taken just before it on the same connection
        (None when no row came back, or when it could not be read). A commit between the two makes the
        version look older than the rows, never newer: reuse stays safe.

        Why not one statement: a ``pragma_data_version()`` subquery in the SELECT cost about 70 us a
        read, the PRAGMA on its own about 7."""
        if self._inline is None:
            return None
        version = self.data_version()
        rows = self.read_inline(statement, params)
        if rows is None:
            return None
        if not rows:
            return rows, None
        return rows, version

    def data_version(self) -> DataVersion | None:
        """A token that stays equal while no other connection commits to the SQLite file (SQLite's
        ``PRAGMA data_version`` on this thread's inline connection; :meth:`write_inline` commits do not
        count); None for PostgreSQL or when it cannot be read: then assume anything may have changed.
        Take it *before* a read whose rows should be reused: a commit in between makes it look changed."""
        if self._inline is None:
            return None
        try:
            connection = self._inline.connections.connection()
            row = connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.OperationalError:
            return None
        return connection, int(row[0])

    def inline_writer(self) -> InlineWriter | None:
        """Write transactions on the calling thread (db/inline.py); None for PostgreSQL and in-memory SQLite."""
        if self._writer is None and self._sqlite_file is not None:
            from alpaca_vault.db.inline import InlineWriter  # it builds on this module

            assert self._checkpoints is not None
            self._writer = InlineWriter(self._sqlite_file, self.engine.dialect, self._checkpoints.committed)
        return self._writer

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._inline is not None:
            self._inline.close()
        if self._writer is not None:
            self._writer.close()
        if self._checkpoints is not None:
            self._checkpoints.close()  # (it never waits for the thread's pass)

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"
