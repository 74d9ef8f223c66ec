"""alpaca-py's TradingClient against watchlists and account configurations."""

from __future__ import annotations

import uuid

import httpx2
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import DTBPCheck, OrderSide, OrderStatus, TimeInForce
from alpaca.trading.models import AccountConfiguration, Watchlist
from alpaca.trading.requests import CreateWatchlistRequest, MarketOrderRequest, UpdateWatchlistRequest

from tests.fixtures.simulator import SimAccount, SimulatorHandle


def test_watchlist_lifecycle(trading: TradingClient) -> None:
    assert trading.get_watchlists() == []
    created = trading.create_watchlist(
        CreateWatchlistRequest(name="tech", symbols=["AAPL", "MSFT", "BTC/USD"])
    )
    assert isinstance(created, Watchlist) and created.name == "tech"
    assert [a.symbol for a in created.assets or []] == ["AAPL", "MSFT", "BTC/USD"]
    listed = trading.get_watchlists()
    assert [w.id for w in listed] == [created.id] and listed[0].assets is None  # the list omits assets
    assert trading.get_watchlist_by_id(created.id).name == "tech"
    renamed = trading.update_watchlist_by_id(created.id, UpdateWatchlistRequest(name="mega caps"))
    assert renamed.name == "mega caps" and len(renamed.assets or []) == 3
    replaced = trading.update_watchlist_by_id(created.id, UpdateWatchlistRequest(symbols=["NVDA"]))
    assert [a.symbol for a in replaced.assets or []] == ["NVDA"]
    added = trading.add_asset_to_watchlist_by_id(created.id, "SPY")
    assert [a.symbol for a in added.assets or []] == ["NVDA", "SPY"]
    removed = trading.remove_asset_from_watchlist_by_id(created.id, "NVDA")
    assert [a.symbol for a in removed.assets or []] == ["SPY"]
    assert removed.updated_at >= created.updated_at
    trading.delete_watchlist_by_id(created.id)
    assert trading.get_watchlists() == []


def test_watchlist_errors(trading: TradingClient) -> None:
    trading.create_watchlist(CreateWatchlistRequest(name="one", symbols=["AAPL"]))
    cases = [
        (
            lambda: trading.create_watchlist(CreateWatchlistRequest(name="one", symbols=[])),
            422,
            "must be unique",
        ),
        (
            lambda: trading.create_watchlist(CreateWatchlistRequest(name="x", symbols=["NOPE"])),
            422,
            "not found",
        ),
        (
            lambda: trading.create_watchlist(CreateWatchlistRequest(name="n" * 65, symbols=[])),
            422,
            "at most 64",
        ),
        (lambda: trading.get_watchlist_by_id(uuid.uuid4()), 404, "watchlist not found"),
    ]
    watchlist_id = trading.get_watchlists()[0].id
    cases += [
        (lambda: trading.add_asset_to_watchlist_by_id(watchlist_id, "AAPL"), 422, "already in watchlist"),
        (
            lambda: trading.remove_asset_from_watchlist_by_id(watchlist_id, "MSFT"),
            404,
            "not found in watchlist",
        ),
    ]
    for call, status, text in cases:
        with pytest.raises(APIError) as caught:
            call()
        assert caught.value.status_code == status
        assert text in caught.value.message


def test_watchlists_by_name_and_per_account(
    trading: TradingClient, simulator: SimulatorHandle, sim_account: SimAccount
) -> None:
    trading.create_watchlist(CreateWatchlistRequest(name="crypto", symbols=["ETH/USD"]))
    client = httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers)
    got = client.get("/v2/watchlists:by_name", params={"name": "crypto"})
    assert got.status_code == 200 and Watchlist(**got.json()).name == "crypto"
    added = client.post("/v2/watchlists:by_name", params={"name": "crypto"}, json={"symbol": "BTC/USD"})
    assert [a["symbol"] for a in added.json()["assets"]] == ["ETH/USD", "BTC/USD"]
    updated = client.put("/v2/watchlists:by_name", params={"name": "crypto"}, json={"name": "coins"})
    assert Watchlist(**updated.json()).name == "coins"
    assert client.get("/v2/watchlists:by_name", params={"name": "crypto"}).status_code == 404
    other = simulator.new_account()
    stranger = httpx2.Client(base_url=simulator.base_url, headers=other.headers)
    assert stranger.get("/v2/watchlists").json() == []  # each account has its own
    watchlist_id = updated.json()["id"]
    assert stranger.get(f"/v2/watchlists/{watchlist_id}").status_code == 404
    stranger.close()
    assert client.delete("/v2/watchlists:by_name", params={"name": "coins"}).status_code == 204
    client.close()


def test_account_configuration_read_update_and_effects(trading: TradingClient) -> None:
    config = trading.get_account_configurations()
    assert isinstance(config, AccountConfiguration)
    assert config.suspend_trade is False and config.no_shorting is True and config.fractional_trading is True
    config.suspend_trade = True
    config.dtbp_check = DTBPCheck.BOTH
    updated = trading.set_account_configurations(config)
    assert updated.suspend_trade is True and updated.dtbp_check == DTBPCheck.BOTH
    assert trading.get_account().trade_suspended_by_user is True
    with pytest.raises(APIError) as caught:
        trading.submit_order(
            MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
        )
    assert caught.value.status_code == 403 and "suspend_trade" in caught.value.message
    updated.suspend_trade = False
    updated.fractional_trading = False
    trading.set_account_configurations(updated)
    with pytest.raises(APIError) as caught:
        trading.submit_order(
            MarketOrderRequest(symbol="AAPL", qty=0.5, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
        )
    assert caught.value.status_code == 403 and "fractional" in caught.value.message
    whole = trading.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert whole.status == OrderStatus.FILLED


def test_account_configuration_refuses_unknown_and_bad_values(
    simulator: SimulatorHandle, sim_account: SimAccount
) -> None:
    client = httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers)
    cases = [
        ({"margin": "4"}, "unknown account configuration: margin"),
        ({"dtbp_check": "sometimes"}, "dtbp_check must be one of both, entry, exit"),
        ({"max_options_trading_level": 7}, "max_options_trading_level must be 0, 1, 2 or 3"),
        ({"suspend_trade": "yes"}, "suspend_trade must be true or false"),
        ({"no_shorting": False}, "cash accounts"),
    ]
    for body, text in cases:
        answer = client.patch("/v2/account/configurations", json=body)
        assert answer.status_code == 422 and text in answer.json()["message"], body
    assert client.get("/v2/account/configurations").json()["dtbp_check"] == "entry"  # nothing half-applied
    client.close()
