"""Orders are never duplicated: lost answers are reconciled by client_order_id."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from alpaca_vault.broker import (
    AlpacaClient,
    AlpacaKeys,
    AlpacaRejected,
    OrderOutcomeUnknown,
    OrderRequest,
    ReplaceOrderRequest,
)

from .conftest import FAST_RETRY, faults_left, keys_for, make_client


@pytest.mark.parametrize("lost", ["504", "drop"])
async def test_lost_answer_leaves_exactly_one_order(
    lost: str, broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    simulator.set_fault(match="POST /v2/orders", lost_response=lost, count=2)
    order = await broker.place_order(keys, OrderRequest(symbol="AAPL", side="buy", qty=5))
    at_broker = simulator.orders(sim_account.api_key)
    assert [o["id"] for o in at_broker] == [order.id]
    assert at_broker[0]["client_order_id"] == order.client_order_id

    # Asked again with the same client_order_id (fault still on): the same order, none created.
    again = await broker.place_order(
        keys, OrderRequest(symbol="AAPL", side="buy", qty=5, client_order_id=order.client_order_id)
    )
    assert again.id == order.id
    assert len(simulator.orders(sim_account.api_key)) == 1
    assert faults_left(simulator) == {}  # both answers were really lost


async def test_hung_answer_times_out_and_is_reconciled(simulator: Any, sim_account: Any) -> None:
    client = make_client(simulator, timeout=0.3)
    keys = keys_for(sim_account)
    try:
        simulator.set_fault(match="POST /v2/orders", lost_response="hang", latency_ms=1500, count=2)
        order = await client.place_order(keys, OrderRequest(symbol="NVDA", side="buy", qty=1))
        assert [o["id"] for o in simulator.orders(sim_account.api_key)] == [order.id]
        again = await client.place_order(
            keys, OrderRequest(symbol="NVDA", side="buy", qty=1, client_order_id=order.client_order_id)
        )
        assert again.id == order.id
        assert len(simulator.orders(sim_account.api_key)) == 1
        assert faults_left(simulator) == {}  # both answers hung past the timeout
    finally:
        await client.aclose()


async def test_same_client_order_id_twice_makes_one_order(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    request = OrderRequest(symbol="KO", side="buy", qty=1, client_order_id="agent-retry-1")
    first = await broker.place_order(keys, request)
    second = await broker.place_order(keys, request)
    assert first.id == second.id
    assert len(simulator.orders(sim_account.api_key)) == 1


async def test_client_order_id_reused_for_a_different_order_is_refused(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    await broker.place_order(keys, OrderRequest(symbol="KO", side="buy", qty=1, client_order_id="taken"))
    with pytest.raises(AlpacaRejected) as caught:
        await broker.place_order(
            keys, OrderRequest(symbol="AAPL", side="buy", qty=1, client_order_id="taken")
        )
    assert "already belongs to a different order" in str(caught.value)
    assert "symbol" in str(caught.value) and "nothing new was placed" in str(caught.value)
    assert len(simulator.orders(sim_account.api_key)) == 1


async def test_unknown_outcome_when_lookup_fails_too(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    simulator.set_fault(match="POST /v2/orders", lost_response="504", count=1)
    simulator.set_fault(match="GET /v2/orders:by_client_order_id", status=503, count=FAST_RETRY.attempts)
    with pytest.raises(OrderOutcomeUnknown) as caught:
        await broker.place_order(
            keys, OrderRequest(symbol="AAPL", side="buy", qty=1, client_order_id="unsure")
        )
    assert caught.value.client_order_id == "unsure"
    assert str(caught.value).endswith("client_order_id='unsure'.")
    # Never resubmitted blindly: the one order the broker took is the only one.
    assert [o["client_order_id"] for o in simulator.orders(sim_account.api_key)] == ["unsure"]
    assert faults_left(simulator) == {}  # the answer was lost and every lookup attempt failed

    simulator.clear_faults()
    found = await broker.get_order_by_client_id(keys, "unsure")
    assert found.symbol == "AAPL"


async def test_lost_replace_answer_leaves_one_replacement(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    original = await broker.place_order(
        keys, OrderRequest(symbol="AAPL", side="buy", qty=1, type="limit", limit_price=Decimal("1.00"))
    )
    simulator.set_fault(match="PATCH /v2/orders/*", lost_response="504", count=1)
    replacement = await broker.replace_order(
        keys, original.id, ReplaceOrderRequest(limit_price=Decimal("1.50"))
    )
    assert replacement.replaces == original.id
    assert replacement.limit_price == Decimal("1.50")
    ids = sorted(o["id"] for o in simulator.orders(sim_account.api_key))
    assert ids == sorted([original.id, replacement.id])
    assert faults_left(simulator) == {}


async def test_lost_close_position_answer_is_reported_not_repeated(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    await broker.place_order(keys, OrderRequest(symbol="AAPL", side="buy", qty=4))
    simulator.set_fault(match="DELETE /v2/positions/*", lost_response="504", count=1)
    with pytest.raises(OrderOutcomeUnknown) as caught:
        await broker.close_position(keys, "AAPL", qty=1)
    assert caught.value.client_order_id is None
    assert str(caught.value) == (
        "The request (closing AAPL) was sent but its outcome is unknown (AlpacaUnavailable)."
    )
    sells = [o for o in simulator.orders(sim_account.api_key) if o["side"] == "sell"]
    assert len(sells) == 1
    assert faults_left(simulator) == {}


async def test_concurrent_orders_under_lost_answers_are_each_placed_once(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    simulator.set_fault(match="POST /v2/orders", lost_response="504", count=10)
    orders = await asyncio.gather(
        *(broker.place_order(keys, OrderRequest(symbol="KO", side="buy", qty=1)) for _ in range(20))
    )
    at_broker = simulator.orders(sim_account.api_key)
    assert sorted(o.id for o in orders) == sorted(o["id"] for o in at_broker)
    assert len(at_broker) == 20
    assert faults_left(simulator) == {}  # ten answers were lost along the way


async def test_concurrent_calls_with_one_client_order_id_make_one_order(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    simulator.set_fault(match="POST /v2/orders", lost_response="504", count=2)
    request = OrderRequest(symbol="KO", side="buy", qty=1, client_order_id="one-intent")
    orders = await asyncio.gather(*(broker.place_order(keys, request) for _ in range(5)))
    assert len({o.id for o in orders}) == 1
    assert [o["client_order_id"] for o in simulator.orders(sim_account.api_key)] == ["one-intent"]
    assert faults_left(simulator) == {}
