"""Multi-leg (mleg) option orders through the guard, at protocol level against the simulator.

Each rule checks every leg (symbols, deny list, asset class, order type, uncovered sell legs) and the
whole order (net notional against the dollar limits and the confirmation threshold; the duplicate
window over the leg set). A refused spread never reaches the simulator (its order count unchanged).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from alpaca_vault.guard.policy import default_settings
from alpaca_vault.server.settings import Settings
from tests.fixtures.mcp_server import text_of
from tests.guard.test_guard_protocol import ok, session, set_policy
from tests.tools.test_options_tools import calls_from_the_chain


def spread(low: str, high: str, *, qty: int = 1, price: str | None = "1.50", **extra: Any) -> dict[str, Any]:
    """A bull call spread: buy the lower strike, sell the higher (the long leg covers the short)."""
    order: dict[str, Any] = {
        "order_class": "mleg",
        "qty": qty,
        "legs": [
            {"symbol": low, "side": "buy", "ratio_qty": 1, "position_intent": "buy_to_open"},
            {"symbol": high, "side": "sell", "ratio_qty": 1, "position_intent": "sell_to_open"},
        ],
        **extra,
    }
    if price is not None:
        order.update(type="limit", limit_price=price)
    return order


def naked(low: str, high: str) -> dict[str, Any]:
    """Two sell legs and no buy leg: both calls would be written uncovered."""
    return {
        "order_class": "mleg",
        "qty": 1,
        "type": "limit",
        "limit_price": "1.00",
        "legs": [{"symbol": low, "side": "sell"}, {"symbol": high, "side": "sell"}],
    }


async def test_a_two_leg_spread_is_placed_its_intent_names_the_legs_and_a_market_spread_previews(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with session(server_settings, sim_account) as client:
        low, *_, high = await calls_from_the_chain(client)
        await set_policy(server_settings, "paper-1", max_order_notional=Decimal(1000), allow_short=False)
        placed = ok(await client.call_tool("alpaca_place_order", spread(low, high)))
        assert placed["environment"] == "paper" and placed["order"]["order_class"] == "mleg"
        assert placed["order"]["id"] in {o["id"] for o in simulator.orders(sim_account.api_key)}
        events = ok(await client.call_tool("list_audit_events", {"action": "order.intent"}))["events"]
        [intent] = [
            e for e in events if e["details"].get("client_order_id") == placed["order"]["client_order_id"]
        ]
        assert intent["details"]["legs"] == [f"buy 1 {low} buy_to_open", f"sell 1 {high} sell_to_open"]
        # A market spread's preview: priced from the legs' quotes (nothing is placed).
        count = len(simulator.orders(sim_account.api_key))
        preview = ok(await client.call_tool("alpaca_preview_order", spread(low, high, qty=2, price=None)))
        assert preview["order"]["symbol"] is None and [leg["symbol"] for leg in preview["order"]["legs"]] == [
            low,
            high,
        ]
        quotes = ok(await client.call_tool("alpaca_get_latest_quote", {"symbols": f"{low},{high}"}))["quotes"]
        net = Decimal(str(quotes[low]["ask_price"])) - Decimal(str(quotes[high]["bid_price"]))
        # The simulator's prices move between the two reads: the estimate is the net debit x100 x qty, roughly.
        assert abs(Decimal(preview["estimated_notional"]) - abs(net) * 200) <= Decimal(20), (preview, net)
        assert "legs' latest quotes" in preview["price_source"] and "x100" in preview["price_source"]
        assert any(
            c["rule"] == "max_order_notional" for c in preview["checks"]
        )  # the whole spread is checked
        assert len(simulator.orders(sim_account.api_key)) == count


# (policy changes, phrases in the refusal; the order: "spread" or "naked")
RULES: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("symbols", {"symbols": ["MSFT"]}, ["(a leg of this spread) is not among the symbols", "--symbols"], "spread"),
    ("deny_symbols", {"deny_symbols": ["AAPL"]}, ["is on the deny list", "by AAPL", "--deny-symbols none"],
     "spread"),
    ("asset_classes", {"asset_classes": ["us_equity"]},
     ["This option spread is us_option", "--asset-classes us_equity,us_option"], "spread"),
    ("order_types", {"order_types": ["market"]}, ["limit orders are not allowed", "--order-types market,limit"],
     "spread"),
    ("allow_short", {"allow_short": False}, ["would sell 1 x", "uncovered", "--allow-short"], "naked"),
    ("max_order_notional", {"max_order_notional": Decimal(200)},
     ["Order notional about $300 exceeds the per-order limit of $200", "At most 1 spread fit",
      "--max-order-notional 300"], "spread"),
    ("max_daily_notional", {"max_daily_notional": Decimal(250)},
     ["this one, about $300, would bring the day to $300", "--max-daily-notional 300"], "spread"),
    ("confirm_above_notional", {"confirm_above_notional": Decimal(100)},
     ["A person must confirm this", "about $300", "confirmation threshold of $100"], "spread"),
]  # fmt: skip


async def test_each_rule_refuses_a_spread_before_alpaca(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    # One session for every rule (the chain lookup and the server start are the slow part); each rule's
    # changes are undone before the next.
    defaults = default_settings("paper")
    async with session(server_settings, sim_account) as client:
        low, *_, high = await calls_from_the_chain(client)
        for rule, changes, phrases, kind in RULES:
            await set_policy(server_settings, "paper-1", **changes)
            order = spread(low, high, qty=2) if kind == "spread" else naked(low, high)
            result = await client.call_tool("alpaca_place_order", order)
            message = text_of(result)
            assert result.is_error, (rule, message)
            for phrase in phrases:
                assert phrase in message, (rule, message)
            assert simulator.orders(sim_account.api_key) == [], rule  # nothing reached Alpaca
            preview = ok(await client.call_tool("alpaca_preview_order", order))
            assert preview["allowed"] is False or preview["confirmation_required"] is True, rule
            await set_policy(server_settings, "paper-1", **{k: getattr(defaults, k) for k in changes})


async def test_a_covered_credit_spread_passes_allow_short_and_a_repeat_needs_a_person(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with session(server_settings, sim_account) as client:
        low, *_, high = await calls_from_the_chain(client)
        await set_policy(server_settings, "paper-1", allow_short=False)
        # A bear call spread: sell the lower strike, buy the higher (same expiry): the short leg is covered.
        credit = {
            "order_class": "mleg",
            "qty": 1,
            "type": "market",
            "legs": [{"symbol": low, "side": "sell"}, {"symbol": high, "side": "buy"}],
            "client_order_id": "bear-1",
        }
        ok(await client.call_tool("alpaca_place_order", credit))
        count = len(simulator.orders(sim_account.api_key))
        # The same leg set, listed in the other order, under a new id: the duplicate window asks a person.
        again = {**credit, "legs": credit["legs"][::-1], "client_order_id": "bear-2"}
        repeat = await client.call_tool("alpaca_place_order", again)
        assert repeat.is_error and "A person must confirm this" in text_of(repeat)
        assert "under client_order_id bear-1" in text_of(repeat)
        assert len(simulator.orders(sim_account.api_key)) == count
