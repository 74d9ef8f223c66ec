"""Retries: idempotent requests ride out 429s and 5xx bursts; order creation is never repeated blindly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from alpaca_vault.broker import AlpacaClient, AlpacaKeys, AlpacaUnavailable, OrderRequest

from .conftest import faults_left


async def test_429_with_retry_after_is_waited_out(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any
) -> None:
    simulator.set_fault(match="GET /v2/account", status=429, retry_after=1, count=1)
    account = await broker.get_account(keys)
    assert account.status == "ACTIVE"
    assert faults_left(simulator) == {}  # the 429 was answered (and waited out)


async def test_5xx_burst_on_get_is_retried(broker: AlpacaClient, keys: AlpacaKeys, simulator: Any) -> None:
    simulator.set_fault(match="GET /v2/positions", status=500, count=1)
    simulator.set_fault(match="GET /v2/positions", status=503, count=1)
    simulator.set_fault(match="GET /v2/positions", status=502, count=1)
    assert await broker.get_positions(keys) == []
    assert faults_left(simulator) == {}  # all three errors were answered before the success


async def test_5xx_burst_on_market_data_is_retried(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any
) -> None:
    simulator.set_fault(match="GET /v2/stocks/*", status=503, count=2)
    quotes = await broker.get_latest_quote(keys, "AAPL")
    assert quotes["AAPL"].ask_price is not None
    assert faults_left(simulator) == {}


async def test_429_on_order_is_waited_out_once(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    # Alpaca does not act on a request it answers 429, so even a POST may wait it out.
    simulator.set_fault(match="POST /v2/orders", status=429, retry_after=1, count=1)
    order = await broker.place_order(keys, OrderRequest(symbol="AAPL", side="buy", qty=1))
    assert [o["id"] for o in simulator.orders(sim_account.api_key)] == [order.id]
    assert faults_left(simulator) == {}


async def test_order_post_is_never_repeated_blindly(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    # Every POST is applied but answered 504: a blind retrier would make one order per attempt.
    simulator.set_fault(match="POST /v2/orders", lost_response="504", count=3)
    order = await broker.place_order(keys, OrderRequest(symbol="AAPL", side="buy", qty=1))
    assert [o["id"] for o in simulator.orders(sim_account.api_key)] == [order.id]
    # Exactly one POST went out (and lost its answer); the order was then found by its id.
    assert faults_left(simulator) == {"POST /v2/orders": 2}


async def test_order_post_failing_twice_is_reported_not_placed(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    # A 500 that did not create the order: looked up (absent), resubmitted once, then given up.
    simulator.set_fault(match="POST /v2/orders", status=500, count=3)
    with pytest.raises(AlpacaUnavailable) as caught:
        await broker.place_order(
            keys, OrderRequest(symbol="AAPL", side="buy", qty=1, client_order_id="twice")
        )
    assert "NOT placed" in str(caught.value)
    assert "twice" in str(caught.value)
    assert simulator.orders(sim_account.api_key) == []
    assert faults_left(simulator) == {"POST /v2/orders": 1}  # exactly two POSTs, each answered 500


async def test_single_5xx_on_order_is_reconciled_then_resubmitted(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    simulator.set_fault(match="POST /v2/orders", status=503, count=1)
    order = await broker.place_order(
        keys, OrderRequest(symbol="MSFT", side="buy", qty=2, client_order_id="once")
    )
    assert order.client_order_id == "once"
    assert [o["client_order_id"] for o in simulator.orders(sim_account.api_key)] == ["once"]
    assert faults_left(simulator) == {}


async def test_cancel_retried_after_lost_answer_reports_success(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any
) -> None:
    resting = await broker.place_order(
        keys, OrderRequest(symbol="AAPL", side="buy", qty=1, type="limit", limit_price=Decimal("1.00"))
    )
    # The first DELETE cancels the order but its answer is lost; the retry then meets "already canceled".
    simulator.set_fault(match="DELETE /v2/orders/*", lost_response="504", count=1)
    await broker.cancel_order(keys, resting.id)
    assert faults_left(simulator) == {}  # the first DELETE really lost its answer
    assert (await broker.get_order(keys, resting.id)).status == "canceled"
