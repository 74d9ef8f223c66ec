"""The store API on both backends: events append gap-free and verify; order intents record and settle."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from alpaca_vault.audit import AuditLog
from alpaca_vault.audit.chain import CLI, GENESIS_HASH, STDIO, Actor
from alpaca_vault.db import Database
from alpaca_vault.db.models import AuditEvent, OrderIntent
from alpaca_vault.guard.order_intents import OrderIntents
from tests.audit.conftest import Tenant

ORDER = {"symbol": "AAPL", "side": "buy", "qty": "2", "type": "market", "time_in_force": "day"}


async def test_events_chain_from_genesis_and_verify(audit_log: AuditLog, alice: Tenant) -> None:
    uid = alice.user.id
    first = await audit_log.append(
        uid,
        "credential.unseal",
        STDIO,
        credential_id=alice.credential.id,
        credential_name="paper-1",
        tool="alpaca_get_account",
    )
    second = await audit_log.append(
        uid,
        "order.intent",
        Actor.token(alice.user.id, "laptop"),
        details={"symbol": "AAPL", "qty": Decimal("2")},
    )
    assert (first["seq"], first["prev_hash"]) == (1, GENESIS_HASH)
    assert (second["seq"], second["prev_hash"]) == (2, first["hash"])
    listed = await audit_log.events(uid)
    assert [e.seq for e in listed] == [2, 1]
    assert listed[0].details == {"symbol": "AAPL", "qty": "2"}
    assert listed[0].actor == f"token:{alice.user.id}:laptop"
    assert listed[1].tool == "alpaca_get_account" and listed[1].credential_name == "paper-1"
    report = await audit_log.as_owner().verify()
    assert report.ok and (report.users, report.events) == (1, 2)


async def test_details_take_only_recorded_fields(audit_log: AuditLog, alice: Tenant) -> None:
    with pytest.raises(ValueError, match="not a recorded field"):
        await audit_log.append(alice.user.id, "credential.store", CLI, details={"secret_key": "x"})
    with pytest.raises(ValueError, match="unknown audit action"):
        await audit_log.append(alice.user.id, "credential.peek", CLI)


async def test_seq_is_gap_free_under_concurrency(
    database: Database, audit_log: AuditLog, alice: Tenant, bob: Tenant
) -> None:
    async def burst(tenant: Tenant, n: int) -> None:
        await asyncio.gather(
            *(audit_log.append(tenant.user.id, "credential.unseal", STDIO) for _ in range(n))
        )

    # A second log on the same database: two writers, as two replicas would be.
    other = AuditLog(database, audit_log.keys)
    await asyncio.gather(
        burst(alice, 40),
        burst(bob, 40),
        *(other.append(alice.user.id, "credential.unseal", CLI) for _ in range(20)),
    )
    for tenant, count in ((alice, 60), (bob, 40)):
        async with database.session(tenant.user.id) as session:
            seqs = (
                (
                    await session.execute(
                        select(AuditEvent.seq)
                        .where(AuditEvent.user_id == tenant.user.id)
                        .order_by(AuditEvent.seq)
                    )
                )
                .scalars()
                .all()
            )
        assert list(seqs) == list(range(1, count + 1))
    report = await audit_log.as_owner().verify()
    assert report.ok, [str(p) for p in report.problems]


async def test_an_intent_is_recorded_then_settled_with_its_events(
    database: Database, intents: OrderIntents, audit_log: AuditLog, alice: Tenant
) -> None:
    intent = await intents.record(
        alice.user.id,
        alice.credential.id,
        "paper-1",
        "coid-1",
        ORDER,
        actor=STDIO,
        tool="alpaca_place_order",
        notional_estimate=Decimal("401.50"),
    )
    assert intent.state == "pending" and not intent.repeat
    await intents.settle(
        intent,
        "accepted",
        actor=STDIO,
        credential_name="paper-1",
        alpaca_order_id="ord-1",
        alpaca_status="new",
    )
    stored = await intents.get(alice.user.id, intent.id)
    assert stored is not None
    assert (stored.state, stored.alpaca_order_id, stored.alpaca_status) == ("accepted", "ord-1", "new")
    assert stored.request == ORDER and stored.notional_estimate == Decimal("401.50")
    events = await audit_log.events(alice.user.id, newest_first=False)
    assert [e.action for e in events] == ["order.intent", "order.accepted"]
    assert events[0].details == {**ORDER, "client_order_id": "coid-1"}
    assert events[1].details == {"client_order_id": "coid-1", "alpaca_order_id": "ord-1", "status": "new"}
    since = datetime.now(UTC) - timedelta(days=1)
    assert await intents.daily_notional(alice.user.id, alice.credential.id, since) == Decimal("401.50")


async def test_the_same_client_order_id_is_one_intent(
    database: Database, intents: OrderIntents, audit_log: AuditLog, alice: Tenant
) -> None:
    first, again = await asyncio.gather(
        intents.record(alice.user.id, alice.credential.id, "paper-1", "same", ORDER, actor=STDIO),
        intents.record(alice.user.id, alice.credential.id, "paper-1", "same", ORDER, actor=STDIO),
    )
    assert first.id == again.id and {first.repeat, again.repeat} == {False, True}
    async with database.session(alice.user.id) as session:
        assert (await session.execute(select(func.count()).select_from(OrderIntent))).scalar_one() == 1
    events = await audit_log.events(alice.user.id)
    assert sorted(e.details.get("repeat", False) for e in events) == [False, True]


async def test_rejected_and_unknown_outcomes_are_recorded(
    intents: OrderIntents, audit_log: AuditLog, alice: Tenant
) -> None:
    rejected = await intents.record(alice.user.id, alice.credential.id, "paper-1", "r", ORDER, actor=STDIO)
    unknown = await intents.record(alice.user.id, alice.credential.id, "paper-1", "u", ORDER, actor=STDIO)
    await intents.settle(
        rejected,
        "rejected",
        actor=STDIO,
        credential_name="paper-1",
        error={"status": 403, "code": 40310000, "message": "insufficient buying power"},
    )
    await intents.settle(unknown, "unknown", actor=STDIO, credential_name="paper-1")
    open_ = await intents.list(alice.user.id, states=("pending", "unknown"))
    assert [i.client_order_id for i in open_] == ["u"]
    stored = await intents.get(alice.user.id, rejected.id)
    assert stored is not None and stored.error == {
        "status": 403,
        "code": 40310000,
        "message": "insufficient buying power",
    }
    assert [e.action for e in await audit_log.events(alice.user.id)][:2] == [
        "order.unknown",
        "order.rejected",
    ]
    since = datetime.now(UTC) - timedelta(days=1)
    assert await intents.daily_notional(alice.user.id, alice.credential.id, since) == Decimal(0)
