"""The async Alpaca REST client: every endpoint area on one transport.

:class:`AlpacaClient` is what the server makes once per process. Its methods come from one module
per area of Alpaca's API, each a subclass of :class:`~alpaca_vault.broker.transport.AlpacaTransport`
(auth headers per request, retries, rate limits, typed errors):

- ``account.py``: account, configuration, positions, portfolio history, activities
- ``trading.py``: orders (placed exactly once, see ``orders.py``), option exercise
- ``market_data.py``: latest quotes/trades/bars, snapshots, history, crypto order books, screeners
- ``options.py``: option contracts and chains
- ``locates.py``: short-sale locates (quotes, requests, the account's locates)
- ``reference.py``: clock, calendar, assets, news, corporate actions
- ``watchlists.py``: watchlists
"""

from __future__ import annotations

from .account import AccountApi
from .locates import LocatesApi
from .market_data import MarketDataApi
from .options import OptionsApi
from .reference import ReferenceApi
from .trading import TradingApi
from .transport import AlpacaKeys, RetryPolicy
from .watchlists import WatchlistsApi

__all__ = ["AlpacaClient", "AlpacaKeys", "RetryPolicy"]


class AlpacaClient(
    AccountApi, TradingApi, MarketDataApi, OptionsApi, ReferenceApi, WatchlistsApi, LocatesApi
):
    """Async client for Alpaca's trading and market data REST APIs.

    Every method takes the credential's :class:`AlpacaKeys` as its first argument; the client
    holds no key. Errors are :mod:`alpaca_vault.broker.errors` types; argument errors found
    before sending are ``ValueError`` (``pydantic.ValidationError`` or ``InvalidRequestError``).
    """
