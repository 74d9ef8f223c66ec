"""The per-credential Alpaca request budget, shared by every replica through PostgreSQL (#10, item 10).

Each replica keeps its own in-process limiter too, but N replicas with one each would together
send N times the budget. Here every request first reserves a slot in one token bucket per key, kept
in ``request_budgets`` and changed by a single ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``
(the row lock serialises replicas; the database's clock is the only clock), in autocommit on an
UNLOGGED table: about one round trip and no WAL flush per Alpaca request. A bucket may go into
debt: the caller is told how long to wait for its slot, so callers queue instead of failing.

The guarantee is about *any* window of ``period`` seconds, not about calendar windows: the bucket
holds at most ``burst`` tokens and refills ``(requests - burst) / period`` per second, so no window
of ``period`` seconds ever sees more than ``burst + (requests - burst) = requests`` requests sent.
The burst is a tenth of the budget (at least one), so the sustained rate is nine tenths of it:
the price of never crossing the budget, whichever way Alpaca counts its minute.
"""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import text

from alpaca_vault.db.engine import Database

MAX_KEY_LENGTH = 64
# Buckets untouched this long are full again anyway: deleting them forgets nothing.
_IDLE_SECONDS = 3600.0
_PRUNE_EVERY_SECONDS = 600.0

_TAKE = text(
    """
    INSERT INTO request_budgets AS b (key, tokens, refreshed_at)
    VALUES (:key, :burst - 1, extract(epoch FROM clock_timestamp()))
    ON CONFLICT (key) DO UPDATE SET
        tokens = LEAST(
            CAST(:burst AS double precision),
            b.tokens + GREATEST(0, extract(epoch FROM clock_timestamp()) - b.refreshed_at) * :rate
        ) - 1,
        refreshed_at = GREATEST(b.refreshed_at, extract(epoch FROM clock_timestamp()))
    RETURNING tokens
    """
)
_GIVE_BACK = text("UPDATE request_budgets SET tokens = tokens + 1 WHERE key = :key")
_PRUNE = text(
    "DELETE FROM request_budgets WHERE refreshed_at < extract(epoch FROM clock_timestamp()) - :idle"
)


def bucket_key(key: str) -> str:
    """The row key of ``key``'s bucket: itself when it fits the column, else its SHA-256 (hex, 64).

    Cutting a long key would let two keys sharing their first 64 characters share one bucket
    (``new-key-pair:{user}:{credential}`` runs to 86); a digest keeps them apart and still fits.
    """
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return hashlib.sha256(key.encode()).hexdigest()


class SharedRequestBudget:
    """``requests`` per ``period`` seconds per key, across every process using this database."""

    def __init__(self, db: Database, *, requests: int, period: float) -> None:
        if not db.is_postgres:
            raise ValueError(
                "the shared request budget needs PostgreSQL; SQLite keeps the in-process limiter"
            )
        if requests < 1 or period <= 0:
            raise ValueError("requests must be at least 1 and period positive")
        self._db = db
        self.requests = requests
        self.period = period
        self.burst = max(1, requests // 10)
        # One request per period when the budget is a single request: refilling nothing would stall.
        self.rate = max(requests - self.burst, 1) / period
        self._next_prune = time.monotonic() + _PRUNE_EVERY_SECONDS

    async def reserve(self, key: str) -> float:
        """Take the next slot for ``key``; returns the seconds to wait before sending (0: now)."""
        key = bucket_key(key)
        # One statement in autocommit: one round trip, where a transaction of our own (BEGIN, the
        # session's app.user_id, COMMIT) took four. No row-level security to scope: no user data.
        async with self._db.engine.connect() as pooled:
            conn = await pooled.execution_options(isolation_level="AUTOCOMMIT")
            tokens = await conn.scalar(_TAKE, {"key": key, "burst": self.burst, "rate": self.rate})
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + _PRUNE_EVERY_SECONDS
                await conn.execute(_PRUNE, {"idle": max(_IDLE_SECONDS, 2 * self.period)})
        debt = -float(tokens or 0.0)
        return debt / self.rate if debt > 0 else 0.0

    async def give_back(self, key: str) -> None:
        """Return a reserved slot the caller will not use (it would not wait that long)."""
        async with self._db.engine.connect() as pooled:
            conn = await pooled.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(_GIVE_BACK, {"key": bucket_key(key)})
