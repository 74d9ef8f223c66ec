"""Tables: users, credentials, api_tokens, data_keys, audit_events, order_intents, trading_policies.

Every tenant table carries ``user_id`` (ON DELETE CASCADE). Primary keys are
UUIDs made by the application, because the vault binds each ciphertext to its
row id before the row is inserted.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates
from sqlalchemy.types import DateTime, TypeDecorator

from alpaca_vault.db.sealed import SealedToken, SealedValue

# Deterministic constraint names: Alembic batch mode on SQLite needs them to alter tables.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ENVIRONMENTS = ("paper", "live")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both backends (SQLite stores naive text, so tag it back on load)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware datetimes")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Credential(Base):
    __tablename__ = "credentials"
    __table_args__ = (
        UniqueConstraint("user_id", "name"),
        # Unique: the same Alpaca key id stored twice for one user is refused even under a race.
        Index("ix_credentials_user_id_key_fingerprint", "user_id", "key_fingerprint", unique=True),
        CheckConstraint("environment IN ('paper', 'live')", name="environment"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32), default="alpaca")
    environment: Mapped[str] = mapped_column(String(8))
    api_key: Mapped[SealedValue] = mapped_column(SealedToken)
    secret_key: Mapped[SealedValue] = mapped_column(SealedToken)
    # "<kid>:<hex HMAC-SHA256 of the key id>" under the key named by kid.
    key_fingerprint: Mapped[str] = mapped_column(String(100))
    # #16: the data key that sealed api_key and secret_key (their v2 tokens name it too); NULL for the
    # old form, sealed directly under the master key, until `alpaca-vault keys migrate` moves them.
    data_key_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("data_keys.id"), default=None, index=True
    )
    account_number: Mapped[str | None] = mapped_column(String(64), default=None)
    account_status: Mapped[str | None] = mapped_column(String(32), default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @validates("api_key", "secret_key")
    def _only_sealed(self, _key: str, value: object) -> SealedValue:
        # Fail at assignment, long before a plaintext could reach SQL or an error message.
        if not isinstance(value, SealedValue):
            raise TypeError(f"sealed column takes a SealedValue, not {type(value).__name__}")
        return value

    def __repr__(self) -> str:
        return f"Credential(id={self.id}, user_id={self.user_id}, name={self.name!r})"


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    def __repr__(self) -> str:
        return f"ApiToken(id={self.id}, user_id={self.user_id}, prefix={self.prefix!r})"


# --- #16 envelope encryption: per-user data keys -----------------------------------------------


class DataKey(Base):
    """A user's AES-256 data key, sealed under the master key ring (AAD bound to this row and user).

    The current key (``retired_at`` NULL, at most one per user) seals new values; a retired key still
    opens the values it sealed until data-key rotation has moved them; a destroyed key
    (``destroyed_at`` set, ``sealed_key`` NULL) opens nothing ever again: crypto-shredding.
    """

    __tablename__ = "data_keys"
    __table_args__ = (
        Index(
            "ix_data_keys_user_id_current",
            "user_id",
            unique=True,
            sqlite_where=text("retired_at IS NULL"),
            postgresql_where=text("retired_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sealed_key: Mapped[SealedValue | None] = mapped_column(SealedToken, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    def __repr__(self) -> str:
        return f"DataKey(id={self.id}, user_id={self.user_id}, destroyed={self.destroyed_at is not None})"


# --- #13: the audit trail and durable order intents ------------------------------------------------

# The one list of audit actions lives in db/audit_actions.py (add new ones there): the audit tool's schema
# needs it before the first tool call, without SQLAlchemy (#15 cold start).
from alpaca_vault.db.audit_actions import AUDIT_ACTIONS as AUDIT_ACTIONS  # noqa: E402
from alpaca_vault.db.audit_actions import AuditAction as AuditAction  # noqa: E402

ORDER_INTENT_STATES = ("pending", "accepted", "rejected", "unknown", "reconciled")
# Events that belong to no user (key.rotate) are chained under this id; no user row has it.
SYSTEM_USER_ID = uuid.UUID(int=0)


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as text: SQLite has no decimal type and floats would round money."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError("decimal columns take finite Decimal values")
        return format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class AuditEvent(Base):
    """One entry of a user's append-only, keyed hash chain (see audit/chain.py for the MAC).

    ``user_id`` is not a foreign key: a user's record outlives the user (``user.remove`` is the last entry).
    An event is named by its place in its chain, (user_id, seq): the primary key. On SQLite the table is
    WITHOUT ROWID, so an append (one per tool call, before anything is decrypted) writes one B-tree, not
    three (a rowid table, the old random-UUID key and the (user_id, seq) index): migration 0009 says more.
    """

    __tablename__ = "audit_events"
    __table_args__ = {"sqlite_with_rowid": False}

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # "stdio", "cli", "console" or "token:<token id>:<token name>"
    actor: Mapped[str] = mapped_column(String(140))
    action: Mapped[str] = mapped_column(String(32))
    credential_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    credential_name: Mapped[str | None] = mapped_column(String(64), default=None)
    tool: Mapped[str | None] = mapped_column(String(64), default=None)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    kid: Mapped[str] = mapped_column(String(32))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The key before migration 0009: a random UUID that nothing here reads, now in no index. Still written
    # for a release, because a server of the previous version may be running while its database is
    # upgraded (a replica, a second stdio server on the same file): it inserts an id with each event, and
    # its ORM, keyed on id, takes a row whose id is NULL for no row at all. The next release stops writing
    # it (nullable for that) and the one after drops it.
    id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=uuid.uuid4)

    def __repr__(self) -> str:
        return f"AuditEvent(user_id={self.user_id}, seq={self.seq}, action={self.action!r})"


class OrderIntent(Base):
    """An order as it was about to be sent, written before the POST; its outcome is filled in after."""

    __tablename__ = "order_intents"
    __table_args__ = (
        # The same client_order_id can never stand for two orders of one account, across restarts and replicas.
        UniqueConstraint("credential_id", "client_order_id"),
        # #14 guard latency: the guard's day totals read only this index (besides the rare replace's body).
        Index(
            "ix_order_intents_credential_id_created_at",
            "credential_id",
            "created_at",
            "state",
            "fingerprint",
            "notional_estimate",
            "user_id",
        ),
        Index("ix_order_intents_state", "state"),
        # #14 guard latency: the duplicate window finds the same order by its fingerprint in one seek.
        Index("ix_order_intents_credential_id_fingerprint", "credential_id", "fingerprint", "created_at"),
        CheckConstraint(
            "state IN ('pending', 'accepted', 'rejected', 'unknown', 'reconciled')", name="state"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("credentials.id", ondelete="CASCADE"))
    client_order_id: Mapped[str] = mapped_column(String(128))
    # The order body as sent to Alpaca (symbol, side, qty/notional, type, prices, ...): never a key.
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    alpaca_order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    alpaca_status: Mapped[str | None] = mapped_column(String(32), default=None)
    notional_estimate: Mapped[Decimal | None] = mapped_column(DecimalText, default=None)
    # {"status": HTTP status, "code": Alpaca's code, "message": Alpaca's text (data, not our words)}
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # #14 guard latency: guard.orders.fingerprint_of(request), what makes two orders the same whatever
    # their ids, so the duplicate window is one indexed read, not a comparison of every recent body.
    # None on intents written before it (the guard compares those bodies as before).
    fingerprint: Mapped[str | None] = mapped_column(String(32), default=None)

    def __repr__(self) -> str:
        return f"OrderIntent(id={self.id}, client_order_id={self.client_order_id!r}, state={self.state!r})"


# --------------------------------------------------------------------------- #14 trading guardrails

POLICY_MODES = ("read_only", "trade")


class TradingPolicy(Base):
    """One credential's trading policy (guard/): edited only by its owner, never by a tool.

    A credential without a row trades under the defaults for its environment
    (guard/policy.py); ``alpaca-vault policy set`` writes the row. List fields
    are JSON arrays; ``symbols`` NULL means any symbol.
    """

    __tablename__ = "trading_policies"
    __table_args__ = (
        CheckConstraint("mode IN ('read_only', 'trade')", name="mode"),
        CheckConstraint("duplicate_window_seconds >= 0", name="duplicate_window"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("credentials.id", ondelete="CASCADE"), unique=True
    )
    mode: Mapped[str] = mapped_column(String(16))
    max_order_notional: Mapped[Decimal | None] = mapped_column(DecimalText, default=None)
    max_daily_notional: Mapped[Decimal | None] = mapped_column(DecimalText, default=None)
    max_orders_per_day: Mapped[int | None] = mapped_column(Integer, default=None)
    max_orders_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    symbols: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    deny_symbols: Mapped[list[str]] = mapped_column(JSON, default=list)
    asset_classes: Mapped[list[str]] = mapped_column(JSON)
    order_types: Mapped[list[str]] = mapped_column(JSON)
    allow_short: Mapped[bool] = mapped_column(Boolean)
    allow_extended_hours: Mapped[bool] = mapped_column(Boolean)
    confirm_above_notional: Mapped[Decimal | None] = mapped_column(DecimalText, default=None)
    confirm_live: Mapped[bool] = mapped_column(Boolean, default=True)
    duplicate_window_seconds: Mapped[int] = mapped_column(Integer, default=30)
    halted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"TradingPolicy(credential_id={self.credential_id}, mode={self.mode!r}, halted={self.halted})"


# --- #12: one-time links (key entry, console sign-in, order approval) -------------------------------

LINK_PURPOSES = ("key_entry", "console_sign_in", "order_approval")


class OneTimeLink(Base):
    """A single-use capability handed to a person as a URL: enter keys, sign in to the console, approve.

    Only the SHA-256 of the link's random part (256 bits) is stored, so a database reader cannot use
    a pending link. ``bound_to`` and ``details`` say exactly what the link may do (never a secret).
    """

    __tablename__ = "one_time_links"
    __table_args__ = (
        CheckConstraint("purpose IN ('key_entry', 'console_sign_in', 'order_approval')", name="purpose"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(32))
    # What the link acts on: a credential name (new key entry), a credential id (replacement), ...
    bound_to: Mapped[str | None] = mapped_column(String(255), default=None)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Failed submissions (keys Alpaca refused) before the link is burnt, and how it ended.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(32), default=None)
    outcome_ref: Mapped[str | None] = mapped_column(String(64), default=None)

    def __repr__(self) -> str:
        return f"OneTimeLink(id={self.id}, user_id={self.user_id}, purpose={self.purpose!r})"


# --- #10 (replicas): the per-credential Alpaca request budget, shared by every replica ---------------


class RequestBudget(Base):
    """One token bucket per rate-limiter key (a credential id): PostgreSQL only, see db/request_budget.py.

    Not a tenant table: it holds no user data, only how many requests a key may still send and when
    that was computed (seconds on the database's clock, so replicas' clocks never matter).
    """

    __tablename__ = "request_budgets"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Double)
    refreshed_at: Mapped[float] = mapped_column(Double, index=True)

    def __repr__(self) -> str:
        return f"RequestBudget(key={self.key!r}, tokens={self.tokens:.2f})"
