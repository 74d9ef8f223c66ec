"""Async Alpaca REST client: models, typed errors, retries, rate limits, idempotent orders.

``broker`` never imports ``vault`` or ``db``: callers pass the unsealed key pair
per call as :class:`AlpacaKeys`.
"""

# Re-exports resolve on first use (PEP 562), as in audit/, vault/ and db/: the gate names AlpacaKeys and
# the errors, and answering a stdio client's first tools/list must not wait for every model (#15 cold start).

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alpaca_vault.broker.client import AlpacaClient, AlpacaKeys, RetryPolicy
    from alpaca_vault.broker.errors import (
        AlpacaAuthError,
        AlpacaBadRequest,
        AlpacaBadResponse,
        AlpacaConnectionError,
        AlpacaError,
        AlpacaForbidden,
        AlpacaNotFound,
        AlpacaRateLimited,
        AlpacaRejected,
        AlpacaRequestError,
        AlpacaTimeout,
        AlpacaUnavailable,
        ClientOrderIdConflict,
        InsufficientQty,
        InvalidRequestError,
        LiveTradingDisabled,
        OrderOutcomeUnknown,
    )
    from alpaca_vault.broker.models import (
        Account,
        AccountConfiguration,
        AccountConfigurationUpdate,
        ActiveStock,
        Activity,
        Asset,
        AssetsQuery,
        Bar,
        BarsPage,
        CalendarDay,
        CancelOrderResult,
        Clock,
        ClosePositionResult,
        CorporateAction,
        CorporateActionAnnouncement,
        CorporateActionsPage,
        CorporateActionsQuery,
        Greeks,
        MostActives,
        Mover,
        Movers,
        NewsArticle,
        NewsPage,
        NewsQuery,
        OptionChainPage,
        OptionChainQuery,
        OptionContract,
        OptionContractsPage,
        OptionContractsQuery,
        OptionLeg,
        OptionSymbol,
        Order,
        Orderbook,
        OrderbookLevel,
        OrderRequest,
        PortfolioHistory,
        Position,
        Quote,
        QuotesPage,
        ReplaceOrderRequest,
        Snapshot,
        StopLoss,
        TakeProfit,
        Trade,
        TradesPage,
        Watchlist,
        WatchlistRequest,
    )
    from alpaca_vault.broker.orders import Placement

# Searched in this order for a name of __all__.
_MODULES = ("errors", "client", "models", "orders")

__all__ = [
    "Account",
    "AccountConfiguration",
    "AccountConfigurationUpdate",
    "ActiveStock",
    "Activity",
    "AlpacaAuthError",
    "AlpacaBadRequest",
    "AlpacaBadResponse",
    "AlpacaClient",
    "AlpacaConnectionError",
    "AlpacaError",
    "AlpacaForbidden",
    "AlpacaKeys",
    "AlpacaNotFound",
    "AlpacaRateLimited",
    "AlpacaRejected",
    "AlpacaRequestError",
    "AlpacaTimeout",
    "AlpacaUnavailable",
    "Asset",
    "AssetsQuery",
    "Bar",
    "BarsPage",
    "CalendarDay",
    "CancelOrderResult",
    "ClientOrderIdConflict",
    "Clock",
    "ClosePositionResult",
    "CorporateAction",
    "CorporateActionAnnouncement",
    "CorporateActionsPage",
    "CorporateActionsQuery",
    "Greeks",
    "InsufficientQty",
    "InvalidRequestError",
    "LiveTradingDisabled",
    "MostActives",
    "Mover",
    "Movers",
    "NewsArticle",
    "NewsPage",
    "NewsQuery",
    "OptionChainPage",
    "OptionChainQuery",
    "OptionContract",
    "OptionContractsPage",
    "OptionContractsQuery",
    "OptionLeg",
    "OptionSymbol",
    "Order",
    "OrderOutcomeUnknown",
    "OrderRequest",
    "Orderbook",
    "OrderbookLevel",
    "Placement",
    "PortfolioHistory",
    "Position",
    "Quote",
    "QuotesPage",
    "ReplaceOrderRequest",
    "RetryPolicy",
    "Snapshot",
    "StopLoss",
    "TakeProfit",
    "Trade",
    "TradesPage",
    "Watchlist",
    "WatchlistRequest",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module_name in _MODULES:
            module = importlib.import_module(f"{__name__}.{module_name}")
            if hasattr(module, name):
                value = getattr(module, name)
                globals()[name] = value  # the next lookup is a plain attribute
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
