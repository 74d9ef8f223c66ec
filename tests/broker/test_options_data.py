"""Option contracts and chains against the simulator: search with filters and pages, look-up, greeks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from alpaca_vault.broker import (
    AlpacaClient,
    AlpacaKeys,
    AlpacaNotFound,
    InvalidRequestError,
    OptionChainQuery,
    OptionContract,
    OptionContractsQuery,
    OptionSymbol,
)


async def test_contract_search_filters_and_pages(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    today = dt.date.today()
    query = OptionContractsQuery(
        underlying_symbols=["aapl"],
        type="put",
        strike_price_gte=Decimal("150"),
        strike_price_lte=Decimal("250"),
        expiration_date_gte=today,
        expiration_date_lte=today + dt.timedelta(days=30),
        limit=5,
    )
    first = await broker.get_option_contracts(keys, query)
    assert len(first.option_contracts) == 5 and first.next_page_token
    contracts = list(first.option_contracts)
    page = first
    while page.next_page_token:
        page = await broker.get_option_contracts(
            keys, query.model_copy(update={"page_token": page.next_page_token})
        )
        contracts += page.option_contracts
    assert len({c.symbol for c in contracts}) == len(contracts) > 5
    for contract in contracts:
        assert isinstance(contract, OptionContract)
        assert (contract.underlying_symbol, contract.type) == ("AAPL", "put")
        assert contract.strike_price is not None and Decimal(150) <= contract.strike_price <= Decimal(250)
        assert (
            contract.expiration_date is not None
            and today <= contract.expiration_date <= today + dt.timedelta(30)
        )
        parsed = OptionSymbol.parse(contract.symbol)  # the OCC symbol says the same as the fields
        assert (parsed.underlying, parsed.type, parsed.strike, parsed.expiration) == (
            "AAPL",
            "put",
            contract.strike_price,
            contract.expiration_date,
        )


async def test_contract_by_symbol_and_by_id(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    page = await broker.get_option_contracts(keys, OptionContractsQuery(underlying_symbols=["SPY"], limit=1))
    listed = page.option_contracts[0]
    by_symbol = await broker.get_option_contract(keys, listed.symbol.lower())
    by_id = await broker.get_option_contract(keys, listed.id)
    assert by_symbol.id == by_id.id == listed.id
    assert by_symbol.multiplier == Decimal(100)
    with pytest.raises(AlpacaNotFound):
        await broker.get_option_contract(keys, "SPY200117C00100000")
    with pytest.raises(InvalidRequestError, match="not an option contract"):
        await broker.get_option_contract(keys, "SPY")


async def test_option_chain_has_greeks_and_implied_volatility(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    today = dt.date.today()
    spot = (await broker.get_latest_trade(keys, "MSFT"))["MSFT"].price
    assert spot is not None
    near = OptionChainQuery(
        type="call",
        strike_price_gte=(spot * Decimal("0.95")).quantize(Decimal(1)),
        strike_price_lte=(spot * Decimal("1.05")).quantize(Decimal(1)),
        expiration_date_gte=today + dt.timedelta(days=20),
        expiration_date_lte=today + dt.timedelta(days=60),
        limit=10,
    )
    chain = await broker.get_option_chain(keys, "msft", near)
    assert 0 < len(chain.snapshots) <= 10
    with_greeks = 0
    for symbol, snapshot in chain.snapshots.items():
        parsed = OptionSymbol.parse(symbol)
        assert (parsed.underlying, parsed.type) == ("MSFT", "call")
        assert near.strike_price_gte is not None and near.strike_price_gte <= parsed.strike
        assert snapshot.symbol == symbol
        assert snapshot.latest_quote is not None
        if snapshot.greeks is not None:  # absent where the quote implies no volatility
            with_greeks += 1
            assert snapshot.greeks.delta is not None and Decimal(0) <= snapshot.greeks.delta <= Decimal(1)
            assert snapshot.implied_volatility is not None and snapshot.implied_volatility > 0
    assert with_greeks > 0
    assert chain.next_page_token  # more than ten near-the-money calls: the second page is real
    more = await broker.get_option_chain(
        keys, "MSFT", near.model_copy(update={"page_token": chain.next_page_token})
    )
    assert more.snapshots and not set(more.snapshots) & set(chain.snapshots)
    with pytest.raises(InvalidRequestError, match="underlying's ticker"):
        await broker.get_option_chain(keys, "MSFT250620C00400000")


async def test_option_bars(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    page = await broker.get_option_contracts(keys, OptionContractsQuery(underlying_symbols=["NVDA"], limit=1))
    contract = page.option_contracts[0].symbol
    bars = await broker.get_bars(keys, contract, timeframe="1Hour", limit=4)
    assert list(bars.bars) == [contract]
    assert 0 < len(bars.bars[contract]) <= 4
    assert all(b.low <= b.close <= b.high for b in bars.bars[contract])


def test_contract_queries_check_their_ranges() -> None:
    with pytest.raises(ValueError, match="above strike_price_lte"):
        OptionContractsQuery(strike_price_gte=200, strike_price_lte=100)
    with pytest.raises(ValueError, match="after expiration_date_lte"):
        OptionChainQuery(expiration_date_gte="2025-02-01", expiration_date_lte="2025-01-01")
    with pytest.raises(ValueError, match="not both"):
        OptionContractsQuery(expiration_date="2025-01-17", expiration_date_gte="2025-01-01")
