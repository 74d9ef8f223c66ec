"""Option orders against the simulator: a single contract by OCC symbol, a spread (mleg), exercise."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from alpaca_vault.broker import (
    AlpacaClient,
    AlpacaKeys,
    AlpacaNotFound,
    AlpacaRejected,
    ClientOrderIdConflict,
    InvalidRequestError,
    OptionContractsQuery,
    OrderRequest,
)


async def calls_near_the_money(broker: AlpacaClient, keys: AlpacaKeys, underlying: str = "AAPL") -> list[str]:
    spot = (await broker.get_latest_trade(keys, underlying))[underlying].price
    assert spot is not None
    page = await broker.get_option_contracts(
        keys,
        OptionContractsQuery(
            underlying_symbols=[underlying],
            type="call",
            strike_price_gte=(spot * Decimal("0.98")).quantize(Decimal(1)),
            expiration_date_gte=dt.date.today() + dt.timedelta(days=20),
            expiration_date_lte=dt.date.today() + dt.timedelta(days=40),
            limit=4,
        ),
    )
    symbols = [
        c.symbol
        for c in page.option_contracts
        if c.expiration_date == page.option_contracts[0].expiration_date
    ]
    assert len(symbols) >= 2
    return symbols


async def test_single_contract_buy_fills_and_shows_as_position(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    (contract, *_) = await calls_near_the_money(broker, keys)
    order = await broker.place_order(
        keys, OrderRequest(symbol=contract, side="buy", qty=2, position_intent="buy_to_open")
    )
    assert (order.symbol, order.qty, order.asset_class) == (contract, Decimal(2), "us_option")
    assert (await broker.get_order(keys, order.id)).status == "filled"
    position = await broker.get_position(keys, contract)
    assert position.qty == Decimal(2)
    assert position.asset_class == "us_option"
    # The same request under the same id is the same order; a different one is a conflict.
    again = await broker.place_order(
        keys,
        OrderRequest(
            symbol=contract,
            side="buy",
            qty=2,
            position_intent="buy_to_open",
            client_order_id=order.client_order_id,
        ),
    )
    assert again.id == order.id
    with pytest.raises(ClientOrderIdConflict) as caught:
        await broker.place_order(
            keys, OrderRequest(symbol=contract, side="buy", qty=3, client_order_id=order.client_order_id)
        )
    assert caught.value.differences == ["qty"]
    assert [o["id"] for o in simulator.orders(sim_account.api_key)] == [order.id]


async def test_vertical_spread_is_one_mleg_order(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    lower, higher, *_ = await calls_near_the_money(broker, keys, "SPY")
    request = OrderRequest(
        order_class="mleg",
        qty=1,
        legs=[
            {"symbol": lower, "side": "buy", "position_intent": "buy_to_open"},
            {"symbol": higher, "side": "sell", "position_intent": "sell_to_open"},
        ],
    )
    order = await broker.place_order(keys, request)
    assert order.order_class == "mleg"
    assert order.legs is not None and sorted((leg.symbol, leg.side) for leg in order.legs) == sorted(
        [(lower, "buy"), (higher, "sell")]
    )
    positions = {p.symbol: p.qty for p in await broker.get_positions(keys)}
    assert positions == {lower: Decimal(1), higher: Decimal(-1)}
    # A lost answer is reconciled by client_order_id like any order: still one spread.
    simulator.set_fault(match="POST /v2/orders", lost_response="504", count=1)
    again = await broker.place_order(
        keys, request.model_copy(update={"client_order_id": order.client_order_id})
    )
    assert again.id == order.id
    assert simulator.faults() == []
    # At the broker: the one spread and its legs, nothing else.
    assert {o["id"] for o in simulator.orders(sim_account.api_key)} == {order.id} | {
        leg.id for leg in order.legs
    }


async def test_exercise_and_do_not_exercise(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    (contract, *_) = await calls_near_the_money(broker, keys, "MSFT")
    await broker.place_order(keys, OrderRequest(symbol=contract, side="buy", qty=1))
    await broker.do_not_exercise_option(keys, contract)
    await broker.exercise_option(keys, contract)
    with pytest.raises(AlpacaNotFound):
        await broker.get_position(keys, contract)  # exercised: the contract position is gone
    with pytest.raises((AlpacaNotFound, AlpacaRejected)):
        await broker.exercise_option(keys, contract)
    with pytest.raises(InvalidRequestError, match="not an option contract"):
        await broker.exercise_option(keys, "MSFT")
