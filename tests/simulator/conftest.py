"""Clients of the official alpaca-py SDK pointed at the session simulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient
from alpaca.trading.client import TradingClient

from tests.fixtures.simulator import SimAccount, SimulatorHandle


def no_retries(client: object) -> None:
    # alpaca-py retries 429/504 three times, three seconds apart; tests want the first answer.
    client._retry = 0  # type: ignore[attr-defined]


SdkClient = TypeVar("SdkClient")


def sdk_client(
    kind: Callable[..., SdkClient], simulator: SimulatorHandle, account: SimAccount, **options: Any
) -> SdkClient:
    """An alpaca-py client of ``account``, pointed at the simulator, that takes the first answer."""
    client = kind(account.api_key, account.secret_key, url_override=simulator.base_url, **options)
    no_retries(client)
    return client


@pytest.fixture
def trading(simulator: SimulatorHandle, sim_account: SimAccount) -> TradingClient:
    return sdk_client(TradingClient, simulator, sim_account, paper=True)


@pytest.fixture
def stock_data(simulator: SimulatorHandle, sim_account: SimAccount) -> StockHistoricalDataClient:
    return sdk_client(StockHistoricalDataClient, simulator, sim_account)


@pytest.fixture
def crypto_data(simulator: SimulatorHandle, sim_account: SimAccount) -> CryptoHistoricalDataClient:
    return sdk_client(CryptoHistoricalDataClient, simulator, sim_account)
