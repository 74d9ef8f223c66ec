"""alpaca-py against the simulator's options: contract search (TradingClient) and option market data."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx2
import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.models import BarSet, Quote, Trade, TradeSet
from alpaca.data.requests import (
    OptionBarsRequest,
    OptionChainRequest,
    OptionLatestQuoteRequest,
    OptionLatestTradeRequest,
    OptionSnapshotRequest,
    OptionTradesRequest,
)
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import ContractType
from alpaca.trading.models import OptionContract
from alpaca.trading.requests import GetOptionContractsRequest

from tests.fixtures.simulator import SimAccount, SimulatorHandle
from tests.simulator.conftest import sdk_client

OCC = re.compile(r"^(AAPL|SPY)\d{6}[CP]\d{8}$")


@pytest.fixture
def option_data(simulator: SimulatorHandle, sim_account: SimAccount) -> OptionHistoricalDataClient:
    return sdk_client(OptionHistoricalDataClient, simulator, sim_account)


def _fridays_ahead(weeks: int) -> date:
    today = datetime.now(ZoneInfo("America/New_York")).date()  # the simulator dates by New York
    return today + timedelta(days=(4 - today.weekday()) % 7 + 7 * weeks)


def test_contract_search_filters_and_paginates(trading: TradingClient) -> None:
    expiry = _fridays_ahead(2)
    request = GetOptionContractsRequest(
        underlying_symbols=["AAPL"],
        expiration_date=expiry,
        type=ContractType.CALL,
        strike_price_gte="180",
        strike_price_lte="200",
        limit=5,
    )
    first = trading.get_option_contracts(request)
    assert first.option_contracts is not None and len(first.option_contracts) == 5
    assert first.next_page_token
    seen = list(first.option_contracts)
    token = first.next_page_token
    while token:
        page = trading.get_option_contracts(request.model_copy(update={"page_token": token}))
        assert page.option_contracts is not None
        seen.extend(page.option_contracts)
        token = page.next_page_token
    strikes = [c.strike_price for c in seen]
    assert strikes == [180, 182.5, 185, 187.5, 190, 192.5, 195, 197.5, 200]
    for contract in seen:
        assert isinstance(contract, OptionContract)
        assert OCC.match(contract.symbol) and contract.symbol[4:10] == expiry.strftime("%y%m%d")
        assert contract.type == ContractType.CALL and contract.size == "100"
        assert contract.underlying_symbol == "AAPL" and contract.expiration_date == expiry
        assert contract.close_price is not None and float(contract.close_price) > 0
    # The same contract by symbol and by id.
    by_symbol = trading.get_option_contract(seen[0].symbol)
    by_id = trading.get_option_contract(seen[0].id)
    assert by_symbol.id == by_id.id == seen[0].id


def test_contract_search_defaults_to_the_next_weekend_and_ranges(trading: TradingClient) -> None:
    default = trading.get_option_contracts(GetOptionContractsRequest(underlying_symbols=["SPY"], limit=1000))
    assert default.option_contracts
    assert {c.expiration_date for c in default.option_contracts} == {_fridays_ahead(0)}
    ranged = trading.get_option_contracts(
        GetOptionContractsRequest(
            underlying_symbols=["SPY"],
            expiration_date_gte=_fridays_ahead(1),
            expiration_date_lte=_fridays_ahead(3),
            type=ContractType.PUT,
            strike_price_gte="500",
            strike_price_lte="520",
        )
    )
    assert ranged.option_contracts is not None
    assert {c.expiration_date for c in ranged.option_contracts} == {_fridays_ahead(w) for w in (1, 2, 3)}
    assert {c.strike_price for c in ranged.option_contracts} == {500, 505, 510, 515, 520}


def test_unknown_contract_is_404(trading: TradingClient) -> None:
    with pytest.raises(APIError) as caught:
        trading.get_option_contract("AAPL991231C00001000")
    assert caught.value.status_code == 404


def test_option_chain_has_greeks_and_implied_volatility(option_data: OptionHistoricalDataClient) -> None:
    expiry = _fridays_ahead(3)
    chain = option_data.get_option_chain(
        OptionChainRequest(
            underlying_symbol="AAPL", expiration_date=expiry, strike_price_gte=150, strike_price_lte=230
        )
    )
    assert len(chain) == 2 * 33  # strikes 150..230 every 2.5, calls and puts
    calls = sorted((s for s in chain.values() if s.symbol[10] == "C"), key=lambda s: s.symbol)
    puts = sorted((s for s in chain.values() if s.symbol[10] == "P"), key=lambda s: s.symbol)
    for snapshot in calls + puts:
        assert snapshot.latest_quote is not None and snapshot.latest_trade is not None
    # Black-Scholes shape: call deltas fall with the strike from ~1 to ~0, puts are call delta - 1.
    call_deltas = [s.greeks.delta for s in calls if s.greeks is not None]
    assert call_deltas == sorted(call_deltas, reverse=True) and call_deltas[0] > 0.9 and call_deltas[-1] < 0.1
    assert all(-1 <= s.greeks.delta <= 0 for s in puts if s.greeks is not None)
    near = [
        s
        for s in calls
        if s.implied_volatility is not None and s.greeks is not None and 0.3 < s.greeks.delta < 0.7
    ]
    assert near and all(
        0.15 < s.implied_volatility < 0.5 for s in near
    )  # AAPL's 25% at the money, with a smile
    assert all(s.greeks.gamma > 0 and s.greeks.vega > 0 and s.greeks.theta < 0 for s in near)


def test_option_latest_quotes_trades_snapshots_and_history(option_data: OptionHistoricalDataClient) -> None:
    expiry = _fridays_ahead(1).strftime("%y%m%d")
    call, put = f"SPY{expiry}C00520000", f"SPY{expiry}P00520000"
    quotes = option_data.get_option_latest_quote(
        OptionLatestQuoteRequest(symbol_or_symbols=[call, put, "SPY991231C00001000"])
    )
    assert set(quotes) == {call, put}
    assert all(isinstance(q, Quote) and 0 <= q.bid_price < q.ask_price for q in quotes.values())
    trades = option_data.get_option_latest_trade(OptionLatestTradeRequest(symbol_or_symbols=call))
    assert isinstance(trades[call], Trade) and trades[call].price > 0
    snapshots = option_data.get_option_snapshot(OptionSnapshotRequest(symbol_or_symbols=[call, put]))
    assert (
        snapshots[call].greeks is not None and snapshots[call].greeks.delta > 0 > snapshots[put].greeks.delta
    )
    bars = option_data.get_option_bars(
        OptionBarsRequest(
            symbol_or_symbols=[call],
            timeframe=TimeFrame.Minute,
            start=datetime.now(UTC) - timedelta(minutes=30),
        )
    )
    assert isinstance(bars, BarSet) and 25 <= len(bars.data[call]) <= 31
    history = option_data.get_option_trades(
        OptionTradesRequest(symbol_or_symbols=[call, put], start=datetime.now(UTC) - timedelta(minutes=10))
    )
    assert isinstance(history, TradeSet) and 9 <= len(history.data[put]) <= 11  # one a minute
    assert option_data.get_option_exchange_codes()["C"].startswith("CBOE")


def test_option_data_needs_keys_and_known_feeds(simulator: SimulatorHandle, sim_account: SimAccount) -> None:
    client = httpx2.Client(base_url=simulator.base_url)
    assert client.get("/v1beta1/options/snapshots/AAPL").status_code == 401
    bad = client.get("/v1beta1/options/snapshots/AAPL", params={"feed": "cboe"}, headers=sim_account.headers)
    assert bad.status_code == 422 and "feed must be opra or indicative" in bad.json()["message"]
    client.close()
