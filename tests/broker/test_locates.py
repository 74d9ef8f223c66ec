"""Short-sale locates against the simulator: one Idempotency-Key per request makes a lost answer safe to
retry (never two locates, never two fees); refusals before sending; the live wall."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from alpaca_vault.broker import AlpacaClient, AlpacaKeys, AlpacaRejected, LiveTradingDisabled
from alpaca_vault.broker.models import LocateRequest

from .conftest import faults_left, keys_for, make_client


@pytest.mark.parametrize("lost", ["504", "drop"])
async def test_a_lost_answer_is_retried_under_the_same_key_and_locates_once(
    lost: str, broker: AlpacaClient, keys: AlpacaKeys, simulator: Any
) -> None:
    """Attack stopped: a retried POST after a lost answer locating (and charging the fee) twice."""
    cash = Decimal((await broker.get_account(keys)).cash or 0)
    simulator.set_fault(match="POST /v1/locates", lost_response=lost, count=1)
    locate = await broker.create_locate(keys, LocateRequest(symbol="gme", qty=300))
    assert faults_left(simulator) == {}  # the first answer really was lost
    assert locate.status == "active" and locate.located_qty == 300 and locate.total_fee == Decimal("13.5")
    page = await broker.list_locates(keys)
    assert [loc.id for loc in page.locates] == [locate.id] and page.next_page_token is None
    assert cash - Decimal((await broker.get_account(keys)).cash or 0) == Decimal("13.5")
    assert (await broker.get_locate(keys, locate.id)).id == locate.id


async def test_quotes_and_refusals(broker: AlpacaClient, keys: AlpacaKeys, simulator: Any) -> None:
    quotes = await broker.get_locate_quotes(keys, ["GME", "AAPL", "BTC/USD"])
    assert [(q.symbol, q.available_qty) for q in quotes.quotes] == [("GME", 5000)]
    assert {e.symbol: e.code for e in quotes.errors} == {
        "AAPL": "easy_to_borrow",
        "BTC/USD": "symbol_not_found",
    }
    with pytest.raises(AlpacaRejected) as refused:  # 422 with Alpaca's string code: the message is kept
        await broker.create_locate(keys, LocateRequest(symbol="AAPL", qty=100))
    assert "easy-to-borrow" in refused.value.message
    for bad in ({"qty": 150}, {"qty": 0}, {"symbol": "BTC/USD"}, {"limit_price": "1e9"}):
        with pytest.raises(ValidationError):
            LocateRequest(**{"symbol": "GME", "qty": 100, **bad})
    live = make_client(simulator, allow_live_trading=False)
    try:
        with pytest.raises(LiveTradingDisabled):
            await live.create_locate(
                keys_for(simulator.new_account(), "live"), LocateRequest(symbol="GME", qty=100)
            )
    finally:
        await live.aclose()
