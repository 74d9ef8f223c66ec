"""Clients of the official alpaca-py SDK pointed at the session simulator."""

from __future__ import annotations

import pytest
from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient
from alpaca.trading.client import TradingClient

from tests.fixtures.simulator import SimAccount, SimulatorHandle


def no_retries(client: object) -> None:
    # alpaca-py retries 429/504 three times, three seconds apart; tests want the first answer.
    client._retry = 0  # type: ignore[attr-defined]


@pytest.fixture
def trading(simulator: SimulatorHandle, sim_account: SimAccount) -> TradingClient:
    client = TradingClient(
        sim_account.api_key, sim_account.secret_key, paper=True, url_override=simulator.base_url
    )
    no_retries(client)
    return client


@pytest.fixture
def stock_data(simulator: SimulatorHandle, sim_account: SimAccount) -> StockHistoricalDataClient:
    client = StockHistoricalDataClient(
        sim_account.api_key, sim_account.secret_key, url_override=simulator.base_url
    )
    no_retries(client)
    return client


@pytest.fixture
def crypto_data(simulator: SimulatorHandle, sim_account: SimAccount) -> CryptoHistoricalDataClient:
    client = CryptoHistoricalDataClient(
        sim_account.api_key, sim_account.secret_key, url_override=simulator.base_url
    )
    no_retries(client)
    return client
