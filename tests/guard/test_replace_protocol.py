"""Replaces through the guard, at protocol level against the simulator.

A replace is checked like an order against the dollar rules: the new order's notional against the
per-order limit and the confirmation threshold, what it adds over the order it replaces against the
daily limit. It gets a durable order intent (the replacement's client_order_id and the replaced
order's id) and the audit events ``order.replace`` then its outcome. A refused replace never reaches
the simulator: the old order stays as it was and no new order appears.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mcp import Client

from alpaca_vault.db import Database
from alpaca_vault.db.models import OrderIntent
from alpaca_vault.server.app import build_server
from alpaca_vault.server.settings import Settings
from tests.fixtures.mcp_server import text_of
from tests.guard.test_guard_protocol import answering, limit_buy, ok, session, set_policy


def open_orders(simulator: Any, account: Any) -> list[tuple[str, str, str]]:
    """(id, qty, limit price) of every open order at the simulator."""
    return sorted(
        (o["id"], str(o["qty"]), str(o["limit_price"]))
        for o in simulator.orders(account.api_key)
        if o["status"] in ("new", "accepted")
    )


async def test_a_replace_is_held_to_the_per_order_and_daily_limits_before_alpaca(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with session(server_settings, sim_account) as client:
        await set_policy(
            server_settings, "paper-1", max_order_notional=Decimal(500), max_daily_notional=Decimal(250)
        )
        resting = ok(await client.call_tool("alpaca_place_order", limit_buy(qty=1)))["order"]  # $100 today
        before = open_orders(simulator, sim_account)

        too_big = await client.call_tool("alpaca_replace_order", {"order_id": resting["id"], "qty": 6})
        assert too_big.is_error
        assert "Order notional about $600 exceeds the per-order limit of $500" in text_of(too_big)
        assert "(paper)" in text_of(too_big)
        assert open_orders(simulator, sim_account) == before  # nothing reached Alpaca

        # $100 -> $200 adds $100: the day comes to $200, within $250.
        replaced = ok(await client.call_tool("alpaca_replace_order", {"order_id": resting["id"], "qty": 2}))[
            "order"
        ]
        assert replaced["replaces"] == resting["id"]
        after_first = open_orders(simulator, sim_account)

        # $200 -> $300 adds another $100: the day would come to $300, above $250.
        over_day = await client.call_tool("alpaca_replace_order", {"order_id": replaced["id"], "qty": 3})
        assert over_day.is_error
        message = text_of(over_day)
        assert (
            "come to about $200; this replace adds about $100, which would bring the day to $300" in message
        )
        assert "--max-daily-notional 300" in message
        assert open_orders(simulator, sim_account) == after_first

        # A lower price adds nothing (and frees nothing): allowed at the day's limit.
        ok(await client.call_tool("alpaca_replace_order", {"order_id": replaced["id"], "limit_price": "90"}))


async def test_a_replace_above_the_confirmation_threshold_asks_a_person(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with session(server_settings, sim_account) as client:
        resting = ok(await client.call_tool("alpaca_place_order", limit_buy(qty=1)))["order"]
        await set_policy(server_settings, "paper-1", confirm_above_notional=Decimal(150))
        before = open_orders(simulator, sim_account)
        unable = await client.call_tool("alpaca_replace_order", {"order_id": resting["id"], "qty": 2})
        assert unable.is_error and "A person must confirm this" in text_of(unable)
        assert f"replace order {resting['id']} with buy 2 AAPL" in text_of(unable)
        assert open_orders(simulator, sim_account) == before
    seen: list[str] = []
    async with Client(
        build_server(server_settings), raise_exceptions=False, elicitation_callback=answering("accept", seen)
    ) as client:
        replaced = ok(await client.call_tool("alpaca_replace_order", {"order_id": resting["id"], "qty": 2}))
        assert replaced["order"]["replaces"] == resting["id"]
    assert len(seen) == 1 and "about $200" in seen[0] and "confirmation threshold of $150" in seen[0]


async def test_a_replace_gets_a_durable_intent_and_its_events(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with session(server_settings, sim_account) as client:
        resting = ok(await client.call_tool("alpaca_place_order", limit_buy(qty=1)))["order"]
        replaced = ok(
            await client.call_tool(
                "alpaca_replace_order",
                {"order_id": resting["id"], "limit_price": "95", "client_order_id": "new-1"},
            )
        )["order"]
        assert replaced["client_order_id"] == "new-1"
        events = ok(await client.call_tool("list_audit_events", {"limit": 50}))["events"]
    mine = [e for e in events if e["details"].get("client_order_id") == "new-1"]
    actions = sorted(e["action"] for e in mine)
    assert actions == ["order.accepted", "order.replace"], mine
    for event in mine:
        assert event["details"]["replaces"] == resting["id"]
    db = Database.create(server_settings.effective_database_url)
    try:
        async with db.session() as s:
            from sqlalchemy import select

            [intent] = (
                await s.execute(select(OrderIntent).where(OrderIntent.client_order_id == "new-1"))
            ).scalars()
            assert intent.state == "accepted" and intent.alpaca_order_id == replaced["id"]
            assert intent.request["replaces"] == resting["id"] and intent.request["limit_price"] == "95"
    finally:
        await db.dispose()
