"""Assets listing with filters, latest bars, account configuration: the client against the simulator."""

from __future__ import annotations

from typing import Any

from alpaca_vault.broker import AccountConfiguration, AlpacaClient, AlpacaKeys, Asset, AssetsQuery, Bar


async def test_list_assets_filters_at_alpaca_and_here(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    everything = await broker.list_assets(keys, AssetsQuery(limit=10_000))
    assert all(isinstance(a, Asset) for a in everything)
    classes = {a.asset_class for a in everything}
    assert {"us_equity", "crypto"} <= classes

    crypto = await broker.list_assets(keys, AssetsQuery(asset_class="crypto", limit=10_000))
    assert crypto and {a.asset_class for a in crypto} == {"crypto"}
    assert len(crypto) < len(everything)

    apple = await broker.list_assets(keys, AssetsQuery(name_contains="apple", limit=10_000))
    assert "AAPL" in [a.symbol for a in apple]
    assert all("apple" in (a.name or "").lower() or "apple" in a.symbol.lower() for a in apple)

    fractionable = await broker.list_assets(keys, AssetsQuery(fractionable=True, limit=10_000))
    assert fractionable and all(a.fractionable is True for a in fractionable)
    assert len(await broker.list_assets(keys, AssetsQuery(limit=2))) == 2
    assert await broker.list_assets(keys, AssetsQuery(status="inactive")) == []


async def test_latest_bar_for_stocks_and_crypto(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    bars = await broker.get_latest_bar(keys, ["AAPL", "btc/usd"])
    assert sorted(bars) == ["AAPL", "BTC/USD"]
    for bar in bars.values():
        assert isinstance(bar, Bar)
        assert bar.low <= bar.open <= bar.high and bar.low <= bar.close <= bar.high


async def test_account_configuration_reads(broker: AlpacaClient, keys: AlpacaKeys, sim_account: Any) -> None:
    config = await broker.get_account_configuration(keys)
    assert isinstance(config, AccountConfiguration)
    assert config.dtbp_check in ("both", "entry", "exit")
    assert config.max_margin_multiplier in ("1", "2", "4")
    assert isinstance(config.no_shorting, bool)
