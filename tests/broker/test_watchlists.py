"""Watchlists against the simulator: create, list, get, rename, set symbols, add, remove, delete."""

from __future__ import annotations

import uuid

import pytest

from alpaca_vault.broker import (
    AlpacaClient,
    AlpacaKeys,
    AlpacaNotFound,
    InvalidRequestError,
    WatchlistRequest,
)


async def test_watchlist_lifecycle(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    created = await broker.create_watchlist(keys, WatchlistRequest(name="Tech", symbols=["aapl", "MSFT"]))
    assert created.name == "Tech"
    assert [a.symbol for a in created.assets or []] == ["AAPL", "MSFT"]

    listed = await broker.list_watchlists(keys)
    assert [w.id for w in listed] == [created.id]

    fetched = await broker.get_watchlist(keys, created.id)
    assert [a.symbol for a in fetched.assets or []] == ["AAPL", "MSFT"]

    renamed = await broker.update_watchlist(keys, created.id, WatchlistRequest(name="Big tech"))
    assert renamed.name == "Big tech"
    assert [a.symbol for a in renamed.assets or []] == ["AAPL", "MSFT"]  # symbols untouched

    refilled = await broker.update_watchlist(
        keys, created.id, WatchlistRequest(name="Big tech", symbols=["NVDA", "BTC/USD"])
    )
    assert [a.symbol for a in refilled.assets or []] == ["NVDA", "BTC/USD"]

    added = await broker.add_to_watchlist(keys, created.id, "spy")
    assert [a.symbol for a in added.assets or []] == ["NVDA", "BTC/USD", "SPY"]
    removed = await broker.remove_from_watchlist(keys, created.id, "NVDA")
    assert [a.symbol for a in removed.assets or []] == ["BTC/USD", "SPY"]

    await broker.delete_watchlist(keys, created.id)
    assert await broker.list_watchlists(keys) == []
    with pytest.raises(AlpacaNotFound):
        await broker.get_watchlist(keys, created.id)
    with pytest.raises(AlpacaNotFound):
        await broker.delete_watchlist(keys, str(uuid.uuid4()))


async def test_watchlist_ids_and_names_are_checked_before_sending(
    broker: AlpacaClient, keys: AlpacaKeys
) -> None:
    with pytest.raises(InvalidRequestError, match="not a watchlist id"):
        await broker.get_watchlist(keys, "../orders")
    with pytest.raises(ValueError, match="printable"):
        WatchlistRequest(name="line\nbreak")
