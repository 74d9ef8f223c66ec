"""The checks engine on its own: every rule fails with an actionable message and passes within bounds."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alpaca_vault.broker.models import OrderRequest, Quote
from alpaca_vault.guard.checks import Counters, check_call
from alpaca_vault.guard.orders import NormalisedOrder, estimate_notional, round_up_nicely
from alpaca_vault.guard.policy import Policy, apply_changes, default_settings

CRED_ID = uuid.uuid4()


def policy(environment: str = "paper", name: str = "paper-main", **changes: Any) -> Policy:
    settings = apply_changes(default_settings(environment), changes)
    return Policy(
        **settings.model_dump(),
        credential=name,
        credential_id=CRED_ID,
        environment=environment,
        is_default=False,
    )  # type: ignore[arg-type]


def order(**fields: Any) -> NormalisedOrder:
    values: dict[str, Any] = {"symbol": "AAPL", "side": "buy", "qty": 10}
    values.update(fields)
    return NormalisedOrder.from_request(OrderRequest(**values))


QUOTE = Quote(symbol="AAPL", ask_price=Decimal("310.00"), bid_price=Decimal("309.50"))


def refusal(report: Any, rule: str) -> str:
    [failed] = [c for c in report.checks if not c.passed]
    assert failed.rule == rule
    return str(failed.message)


def test_the_issues_example_message() -> None:
    o = order(qty=40)
    estimate = estimate_notional(o, QUOTE)
    assert estimate.amount == Decimal("12400.00")
    assert "ask price 310" in estimate.source
    report = check_call(policy(max_order_notional=Decimal(5000)), "place", order=o, estimate=estimate)
    assert refusal(report, "max_order_notional") == (
        "Order notional about $12,400 exceeds the per-order limit of $5,000 on 'paper-main'. At most 16 shares "
        "fit; or ask the owner to raise it: alpaca-vault policy set paper-main --max-order-notional 15000."
    )
    within = check_call(policy(max_order_notional=Decimal(15000)), "place", order=o, estimate=estimate)
    assert within.allowed


def test_sells_are_priced_at_the_bid_options_times_100_limits_at_their_price() -> None:
    assert estimate_notional(order(side="sell"), QUOTE).amount == Decimal("3095.00")
    option = order(symbol="AAPL250117C00150000", qty=2, type="limit", limit_price="3.10")
    estimate = estimate_notional(option, None)
    assert estimate.amount == Decimal("620.00") and "x100" in estimate.source
    assert estimate_notional(order(qty=None, notional="250"), None).amount == Decimal(250)
    assert estimate_notional(order(type="stop", stop_price="300"), None).amount == Decimal("3000.00")
    assert estimate_notional(order(), None).amount is None


@pytest.mark.parametrize(
    ("changes", "the_order", "counters", "position", "rule", "phrases"),
    [
        ({"mode": "read_only"}, {}, None, None, "mode", ["is read_only", "--mode trade"]),
        ({"halted": True}, {}, None, None, "halted", ["is halted", "policy resume paper-main"]),
        ({"symbols": ["MSFT"]}, {}, None, None, "symbols", ["AAPL is not among", "--symbols MSFT,AAPL"]),
        ({"deny_symbols": ["AAPL"]}, {}, None, None, "deny_symbols", ["deny list", "--deny-symbols none"]),
        ({"asset_classes": ["us_equity"]}, {"symbol": "BTC/USD", "qty": 1, "time_in_force": "gtc"}, None, None,
         "asset_classes", ["crypto", "--asset-classes us_equity,crypto"]),
        ({"order_types": ["market"]}, {"type": "limit", "limit_price": "100"}, None, None, "order_types",
         ["limit orders are not allowed", "--order-types market,limit"]),
        ({"allow_extended_hours": False},
         {"type": "limit", "limit_price": "100", "extended_hours": True}, None, None,
         "allow_extended_hours", ["Extended-hours", "--allow-extended-hours"]),
        ({"allow_short": False}, {"side": "sell", "qty": 15}, None, Decimal(10), "allow_short",
         ["more than the 10 held", "Sell at most 10", "--allow-short"]),
        ({"max_daily_notional": Decimal(20000)}, {"type": "limit", "limit_price": "100", "qty": 30},
         Counters(notional_today=Decimal(18000)), None, "max_daily_notional",
         ["come to about $18,000", "$21,000", "At most $2,000 more fits today (20 shares)",
          "--max-daily-notional 25000"]),
        ({"max_orders_per_day": 10}, {}, Counters(orders_today=10), None, "max_orders_per_day",
         ["placed 10 orders today", "--max-orders-per-day 20"]),
        ({"max_orders_per_minute": 3}, {}, Counters(orders_last_minute=3), None, "max_orders_per_minute",
         ["3 orders in the last minute", "--max-orders-per-minute 6"]),
        ({"max_order_notional": Decimal(100)}, {}, None, None, "notional_estimate",
         ["could not be estimated", "limit_price"]),
    ],
)  # fmt: skip
def test_each_rule_refuses_with_the_way_forward_and_passes_within_it(
    changes: dict[str, Any],
    the_order: dict[str, Any],
    counters: Counters | None,
    position: Decimal | None,
    rule: str,
    phrases: list[str],
) -> None:
    o = order(**the_order)
    quote = None if rule == "notional_estimate" else QUOTE
    report = check_call(
        policy(**changes), "place", order=o, estimate=estimate_notional(o, quote),
        position_qty=position, counters=counters,
    )  # fmt: skip
    message = refusal(report, rule)
    for phrase in phrases:
        assert phrase in message, message
    # The same order under the defaults passes every rule.
    assert check_call(
        policy(),
        "place",
        order=o,
        estimate=estimate_notional(o, QUOTE),
        position_qty=position,
        counters=counters,
    ).allowed


def test_cancels_and_closes_pass_while_halted_but_not_read_only() -> None:
    halted = policy(halted=True)
    assert check_call(halted, "cancel").allowed and check_call(halted, "close").allowed
    assert not check_call(halted, "replace").allowed
    assert refusal(check_call(policy(mode="read_only"), "cancel"), "mode")


def test_live_defaults_to_read_only_and_confirm_live_asks_a_person() -> None:
    live = policy("live", "live-main")
    assert refusal(
        check_call(live, "place", order=order(), estimate=estimate_notional(order(), QUOTE)), "mode"
    )
    trading = policy("live", "live-main", mode="trade")
    report = check_call(trading, "cancel")
    assert report.allowed and report.needs_confirmation
    assert "live credential" in report.confirmation_reasons[0]


def test_confirmation_above_threshold_and_for_a_duplicate_but_not_for_the_same_id() -> None:
    o = order()
    estimate = estimate_notional(o, QUOTE)
    above = check_call(policy(confirm_above_notional=Decimal(1000)), "place", order=o, estimate=estimate)
    assert (
        above.allowed
        and "above 'paper-main''s confirmation threshold of $1,000" in above.confirmation_reasons[0]
    )
    duplicate = check_call(
        policy(),
        "place",
        order=o,
        estimate=estimate,
        counters=Counters(duplicate_of="abc", duplicate_age_seconds=4),
    )
    assert duplicate.needs_confirmation and "client_order_id abc" in duplicate.confirmation_reasons[0]
    same_id = check_call(
        policy(max_orders_per_day=1), "place", order=o, estimate=estimate,
        counters=Counters(orders_today=1, duplicate_of="abc", same_id_exists=True),
    )  # fmt: skip
    assert same_id.allowed and not same_id.needs_confirmation


def test_fingerprint_ignores_the_client_order_id_only() -> None:
    assert order(client_order_id="a").fingerprint() == order(client_order_id="b").fingerprint()
    assert order(qty=10).fingerprint() != order(qty=11).fingerprint()


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1e11"), places=2))
def test_round_up_nicely_is_at_least_the_amount(amount: Decimal) -> None:
    nice = round_up_nicely(amount)
    assert nice >= amount
    assert nice <= amount * 2 + 1
