"""PostgreSQL row-level security: the lookups that run before a user is known, maintenance, roles.

Migration 0002 forces RLS on every tenant table: a transaction sees only the
rows of the user named by its ``app.user_id`` setting (``Database.session``
sets it). Three things cannot name a user up front, and each has one narrow,
explicit path here:

* verifying a bearer token (``lookup_token``) and resolving a user name
  (``lookup_user_id``) call SECURITY DEFINER functions that return one row's
  deciding fields, never a table;
* admin commands that span users (``maintenance_session``) opt in with
  ``app.maintenance = 'on'``, which only the table owner's policy honours;
* the application's own database role is created by ``app_role_statements``
  (no ownership, no BYPASSRLS, DML grants only).

On SQLite there is no RLS: the same functions run plain queries, and the
application's ``user_id`` filters are the only wall.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from alpaca_vault.db.engine import Database, DatabaseError
from alpaca_vault.db.models import ApiToken, User

TENANT_TABLES = (
    "users",
    "credentials",
    "api_tokens",
    "data_keys",
    "audit_events",
    "order_intents",
    "trading_policies",
    "one_time_links",
)
# The application role may read and append to these, never change or delete a row (#13).
APPEND_ONLY_TABLES = frozenset({"audit_events"})
# #10 (replicas): tables without user data, so without row-level security; plain DML for the app role.
SHARED_TABLES = ("request_budgets",)
DEFINER_FUNCTIONS = (
    "alpaca_vault_token_lookup(text)",
    "alpaca_vault_user_id(text)",
    "alpaca_vault_open_order_intents(timestamptz)",  # #13: the reconciler's cross-user look at open intents
    "alpaca_vault_link_lookup(text)",  # #12
)
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SCRAM_ITERATIONS = 4096


class MaintenanceNotPermitted(DatabaseError):
    """The connected role may not read across users (it is the application role, as it should be)."""


@dataclass(frozen=True)
class TokenLookup:
    """What verifying a bearer token needs to know about it; nothing else."""

    token_id: uuid.UUID
    user_id: uuid.UUID
    token_hash: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    user_active: bool


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _dialect(session: AsyncSession | AsyncConnection) -> str:
    if isinstance(session, AsyncConnection):
        return session.dialect.name
    return session.get_bind().dialect.name


async def lookup_token(session: AsyncSession | AsyncConnection, token_hash: str) -> TokenLookup | None:
    """The token whose SHA-256 hex digest is ``token_hash``, across users, or None.

    On PostgreSQL ``session`` may be an autocommit ``AsyncConnection`` (one round trip, and the
    function's opt-in lives exactly as long as its statement); SQLite needs an ``AsyncSession``.
    """
    if _dialect(session) == "postgresql":
        row = (
            await session.execute(
                text(
                    "SELECT token_id, user_id, token_hash, expires_at, revoked_at, last_used_at, user_active "
                    "FROM alpaca_vault_token_lookup(:token_hash)"
                ),
                {"token_hash": token_hash},
            )
        ).one_or_none()
        if row is None:
            return None
        return TokenLookup(
            token_id=row.token_id,
            user_id=row.user_id,
            token_hash=row.token_hash,
            expires_at=_utc(row.expires_at),
            revoked_at=_utc(row.revoked_at),
            last_used_at=_utc(row.last_used_at),
            user_active=bool(row.user_active),
        )
    rows = (await session.execute(_TOKEN_BY_HASH, {"token_hash": token_hash})).all()
    return _token_lookup(rows[0]) if rows else None


def lookup_token_inline(database: Database, token_hash: str) -> list[TokenLookup] | None:
    """``lookup_token`` on the calling thread (SQLite files; see ``Database.read_inline``).

    ``[]`` for no such token, ``[token]`` when found, None when this path is not
    available right now: then use ``lookup_token``.
    """
    rows = database.read_inline(_TOKEN_BY_HASH, {"token_hash": token_hash})
    return None if rows is None else [_token_lookup(row) for row in rows]


# SQLite only (PostgreSQL goes through the definer function): one Core statement for both paths.
_TOKEN_BY_HASH = (
    select(
        ApiToken.id.label("token_id"),
        ApiToken.user_id,
        ApiToken.token_hash,
        ApiToken.expires_at,
        ApiToken.revoked_at,
        ApiToken.last_used_at,
        User.is_active.label("user_active"),
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def _token_lookup(row: Any) -> TokenLookup:
    return TokenLookup(
        token_id=row.token_id,
        user_id=row.user_id,
        token_hash=row.token_hash,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        user_active=bool(row.user_active),
    )


async def lookup_user_id(session: AsyncSession, name: str) -> uuid.UUID | None:
    """The id of the user called ``name``, across users, or None."""
    if _dialect(session) == "postgresql":
        value = (
            await session.execute(text("SELECT alpaca_vault_user_id(:name)"), {"name": name})
        ).scalar_one_or_none()
        return value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    return (await session.execute(select(User.id).where(User.name == name))).scalar_one_or_none()


async def can_maintain(session: AsyncSession) -> bool:
    """True when the connected role may see every user's rows (owner, member of owner, or BYPASSRLS)."""
    if _dialect(session) != "postgresql":
        return True
    allowed = (
        await session.execute(
            text(
                "SELECT r.rolsuper OR r.rolbypassrls OR pg_has_role(current_user, c.relowner, 'MEMBER') "
                "FROM pg_roles AS r, pg_class AS c "
                "WHERE r.rolname = current_user AND c.oid = to_regclass('users')"
            )
        )
    ).scalar_one_or_none()
    return bool(allowed)


@asynccontextmanager
async def maintenance_session(db: Database) -> AsyncIterator[AsyncSession]:
    """A transaction across all users, for admin commands run as the tables' owner.

    Raises ``MaintenanceNotPermitted`` (before touching any row) when connected as
    a role the maintenance policy does not cover, e.g. the application role.
    """
    async with db.session() as session:
        if db.is_postgres:
            if not await can_maintain(session):
                raise MaintenanceNotPermitted(
                    "This command reads or changes every user's rows, which the application's database role "
                    "cannot do (row-level security). Run it with ALPACA_VAULT_DATABASE_URL set to the role "
                    "that owns the tables (the one that runs `alpaca-vault db upgrade`)."
                )
            await session.execute(text("SELECT set_config('app.maintenance', 'on', true)"))
        yield session


def scram_sha256_verifier(password: str) -> str:
    """A PostgreSQL SCRAM-SHA-256 password verifier, so the plaintext never reaches the server's logs."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def app_role_statements(
    role: str, *, schema: str = "public", password_verifier: str | None = None
) -> list[str]:
    """SQL that creates the application's login role: DML on the tenant tables, no ownership, no bypass.

    Run as the tables' owner (or a superuser) after ``alpaca-vault db upgrade``.
    ``password_verifier`` is a SCRAM verifier (``scram_sha256_verifier``), never a plaintext.
    """
    if not _ROLE_NAME.fullmatch(role):
        raise ValueError("role name must be lower-case letters, digits and underscores (at most 63)")
    if password_verifier is not None and not password_verifier.startswith("SCRAM-SHA-256$"):
        raise ValueError("password_verifier must be a SCRAM-SHA-256 verifier, not a password")
    login = "LOGIN" if password_verifier is None else f"LOGIN PASSWORD '{password_verifier}'"
    create = (
        f"CREATE ROLE {_quote_ident(role)} {login} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT"
    )
    return [create, *app_role_grants(role, schema=schema)]


def app_role_grants(role: str, *, schema: str = "public") -> list[str]:
    """The grants alone, per database: for a role that already exists (roles are cluster-wide)."""
    if not _ROLE_NAME.fullmatch(role):
        raise ValueError("role name must be lower-case letters, digits and underscores (at most 63)")
    r, s = _quote_ident(role), _quote_ident(schema)
    statements = [
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        # ensure_schema reads the revision to refuse a database that is behind.
        f"GRANT SELECT ON {s}.alembic_version TO {r}",
    ]
    statements += [
        f"GRANT {'SELECT, INSERT' if table in APPEND_ONLY_TABLES else 'SELECT, INSERT, UPDATE, DELETE'} "
        f"ON {s}.{table} TO {r}"
        for table in TENANT_TABLES
    ]
    statements += [f"GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.{table} TO {r}" for table in SHARED_TABLES]
    statements += [f"GRANT EXECUTE ON FUNCTION {s}.{fn} TO {r}" for fn in DEFINER_FUNCTIONS]
    return statements


async def create_app_role(
    db: Database, role: str, *, password: str | None = None, schema: str = "public"
) -> None:
    """Create the application role on PostgreSQL (connected as the owner or a superuser)."""
    if not db.is_postgres:
        raise DatabaseError("Application roles exist only on PostgreSQL; SQLite has no roles.")
    verifier = scram_sha256_verifier(password) if password is not None else None
    async with db.engine.begin() as conn:
        for statement in app_role_statements(role, schema=schema, password_verifier=verifier):
            # Driver SQL: a verifier's ':' and '$' must not be read as bind parameters.
            await conn.exec_driver_sql(statement)
