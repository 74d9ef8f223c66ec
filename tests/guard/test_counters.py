"""Counters from order_intents on both backends: the New York day, the minute, duplicates, the same id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pydantic import SecretStr
from sqlalchemy import select

from alpaca_vault.audit.chain import STDIO, ChainKeys
from alpaca_vault.audit.log import AuditLog
from alpaca_vault.broker.models import OrderRequest
from alpaca_vault.db import Database
from alpaca_vault.db.models import OrderIntent
from alpaca_vault.guard.counters import count_activity, start_of_trading_day
from alpaca_vault.guard.order_intents import OrderIntents
from alpaca_vault.guard.orders import NormalisedOrder
from alpaca_vault.vault.credentials import CredentialService
from alpaca_vault.vault.keyring import KeyRing


def test_the_trading_day_starts_at_midnight_in_new_york_across_daylight_saving() -> None:
    summer = datetime(2026, 7, 1, 3, 30, tzinfo=UTC)  # 23:30 on June 30 in New York (EDT, UTC-4)
    assert start_of_trading_day(summer) == datetime(2026, 6, 30, 4, 0, tzinfo=UTC)
    winter = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 10:00 EST (UTC-5)
    assert start_of_trading_day(winter) == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def _order(client_order_id: str | None, qty: int = 10) -> NormalisedOrder:
    request = OrderRequest(
        symbol="AAPL", side="buy", qty=Decimal(qty), type="limit", limit_price=Decimal(100)
    )
    return NormalisedOrder.from_request(request, client_order_id)


async def test_counts_today_the_last_minute_and_finds_duplicates(
    database: Database, keyring: KeyRing
) -> None:
    vault = CredentialService(database, keyring)
    user = await vault.ensure_user("alice")
    cred = await vault.store(user.id, "paper-1", "paper", SecretStr("PK" + "A" * 14), SecretStr("s" * 30))
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    rows = [
        # (client_order_id, age, state, notional, qty)
        ("yesterday", timedelta(hours=11), "accepted", Decimal(5000), 50),  # 23:00 New York the day before
        ("morning", timedelta(hours=2), "accepted", Decimal(1000), 10),
        ("rejected", timedelta(minutes=5), "rejected", Decimal(9999), 99),
        ("recent", timedelta(seconds=20), "pending", Decimal(1000), 10),
    ]
    async with database.session(user.id) as session:
        for coid, age, state, notional, qty in rows:
            body = _order(coid, qty)
            request = OrderRequest(symbol="AAPL", side="buy", qty=Decimal(qty), type="limit",
                                   limit_price=Decimal(100)).to_alpaca(coid)  # fmt: skip
            assert body.client_order_id == coid
            session.add(
                OrderIntent(
                    user_id=user.id, credential_id=cred.id, client_order_id=coid, request=request,
                    state=state, notional_estimate=notional, created_at=now - age,
                )
            )  # fmt: skip
        # A replace 30 minutes ago: its increase counts toward the day's notional, not as another order.
        session.add(
            OrderIntent(
                user_id=user.id, credential_id=cred.id, client_order_id="replacement", state="accepted",
                request={"qty": "12", "client_order_id": "replacement", "replaces": "alpaca-order-1"},
                notional_estimate=Decimal(200), created_at=now - timedelta(minutes=30),
            )
        )  # fmt: skip
    async with database.session(user.id, readonly=True) as session:
        old_id = await count_activity(
            session, user.id, cred.id, _order("yesterday"), now=now, duplicate_window_seconds=30
        )
        fresh = await count_activity(
            session, user.id, cred.id, _order("new-id"), now=now, duplicate_window_seconds=30
        )
        same = await count_activity(
            session, user.id, cred.id, _order("recent"), now=now, duplicate_window_seconds=30
        )
        other = await count_activity(
            session, user.id, cred.id, _order("new-id", qty=11), now=now, duplicate_window_seconds=30
        )
        narrow = await count_activity(
            session, user.id, cred.id, _order("x"), now=now, duplicate_window_seconds=10
        )
        stranger = await count_activity(
            session, user.id, uuid.uuid4(), _order("new-id"), now=now, duplicate_window_seconds=30
        )
    # Today (New York): morning and recent; the rejected one never became an order.
    assert (fresh.orders_today, fresh.notional_today, fresh.orders_last_minute) == (2, Decimal(2200), 1)
    # An id used before today is still the same order (found by the same read, outside the counted span).
    assert old_id.same_id_exists and old_id.orders_today == 2
    assert (fresh.duplicate_of, fresh.duplicate_age_seconds, fresh.same_id_exists) == ("recent", 20, False)
    assert same.same_id_exists and same.duplicate_of is None
    assert other.duplicate_of is None  # a different size is a different order
    assert narrow.duplicate_of is None  # 20 s ago is outside a 10 s window
    assert stranger.orders_today == 0


async def test_duplicates_are_found_by_fingerprint_whatever_the_decimal_spelling(
    database: Database, keyring: KeyRing
) -> None:
    vault = CredentialService(database, keyring)
    user = await vault.ensure_user("alice")
    cred = await vault.store(user.id, "paper-1", "paper", SecretStr("PK" + "A" * 14), SecretStr("s" * 30))
    audit = AuditLog(database, ChainKeys.from_keyring(keyring))
    intents = OrderIntents(database, audit)
    spelled = OrderRequest(
        symbol="AAPL", side="buy", qty=Decimal("10.0"), type="limit", limit_price=Decimal("100.00")
    )
    try:
        await intents.record(
            user.id, cred.id, cred.name, "earlier", spelled.to_alpaca("earlier"), actor=STDIO
        )
        # A replace is written without a fingerprint; it adds no order and is nobody's duplicate.
        replace = {**spelled.to_alpaca("replacement"), "replaces": "alpaca-order-1"}
        await intents.record(user.id, cred.id, cred.name, "replacement", replace, actor=STDIO)
        async with database.session(user.id, readonly=True) as session:
            rows = await session.execute(select(OrderIntent.client_order_id, OrderIntent.fingerprint))
            stored = {coid: fingerprint for coid, fingerprint in rows}
            now = datetime.now(UTC)
            counted = await count_activity(
                session, user.id, cred.id, _order("new-id"), now=now, duplicate_window_seconds=30
            )
            same_only = await count_activity(
                session,
                user.id,
                cred.id,
                _order("earlier"),
                now=now,
                duplicate_window_seconds=30,
                day_totals=False,
            )
    finally:
        audit.close()
    assert stored["earlier"] == _order("x").fingerprint() and stored["replacement"] is None
    # qty 10.0 at 100.00 is qty 10 at 100: found through the fingerprint index, not a body comparison.
    assert (counted.duplicate_of, counted.orders_today, counted.same_id_exists) == ("earlier", 1, False)
    # A policy without day limits reads only whether the id is taken (the day's totals stay 0).
    assert same_only.same_id_exists and (same_only.orders_today, same_only.notional_today) == (0, Decimal(0))
