"""Pydantic models for what we send to Alpaca and what it answers, one module per area.

``base`` holds what they share (``Money``, the lenient answer base, the strict request base and the
bounded decimal types); ``symbols`` tells stocks, crypto pairs and option contracts apart.
"""

# Re-exports resolve on first use (PEP 562): tools/params.py names the bounded decimals of ``base``, and
# answering a stdio client's first tools/list must not wait for every model module (#15 cold start).

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alpaca_vault.broker.models.account import (
        Account,
        AccountConfiguration,
        AccountConfigurationUpdate,
        Activity,
        PortfolioHistory,
        Position,
    )
    from alpaca_vault.broker.models.base import (
        AlpacaModel,
        LocateFee,
        Money,
        Notional,
        Percentage,
        Price,
        Quantity,
        RequestModel,
        StrikePrice,
        TrailPercent,
        bounded_decimal,
        plain_decimals,
    )
    from alpaca_vault.broker.models.locates import (
        LOCATE_LOT,
        Locate,
        LocateQuote,
        LocateQuoteError,
        LocateQuotes,
        LocateRequest,
        LocatesPage,
        LocateStatus,
    )
    from alpaca_vault.broker.models.market_data import (
        ActiveStock,
        Bar,
        BarsPage,
        Greeks,
        MostActives,
        Mover,
        Movers,
        OptionChainPage,
        OptionFeed,
        Orderbook,
        OrderbookLevel,
        Quote,
        QuotesPage,
        Snapshot,
        SortDirection,
        StockFeed,
        Trade,
        TradesPage,
    )
    from alpaca_vault.broker.models.options import (
        OptionChainQuery,
        OptionContract,
        OptionContractsPage,
        OptionContractsQuery,
        OptionStyle,
        OptionType,
    )
    from alpaca_vault.broker.models.orders import (
        CancelOrderResult,
        ClosePositionRequest,
        ClosePositionResult,
        OptionLeg,
        Order,
        OrderClass,
        OrderRequest,
        OrderSide,
        OrderStatusFilter,
        OrderType,
        PositionIntent,
        ReplaceOrderRequest,
        StopLoss,
        TakeProfit,
        TimeInForce,
    )
    from alpaca_vault.broker.models.reference import (
        Asset,
        AssetClass,
        AssetsQuery,
        CalendarDay,
        Clock,
        CorporateAction,
        CorporateActionAnnouncement,
        CorporateActionsPage,
        CorporateActionsQuery,
        CorporateActionType,
        NewsArticle,
        NewsImage,
        NewsPage,
        NewsQuery,
        format_time,
    )
    from alpaca_vault.broker.models.symbols import (
        SYMBOL_PATTERN,
        AssetKind,
        OptionSymbol,
        asset_kind,
        is_crypto_symbol,
        is_isin,
        is_option_symbol,
        normalize_symbol,
    )
    from alpaca_vault.broker.models.watchlists import Watchlist, WatchlistRequest

# Searched in this order for a name of __all__ (each module imports only base and symbols of these).
_MODULES = (
    "base",
    "symbols",
    "account",
    "locates",
    "market_data",
    "options",
    "orders",
    "reference",
    "watchlists",
)

__all__ = [
    "LOCATE_LOT",
    "SYMBOL_PATTERN",
    "Account",
    "AccountConfiguration",
    "AccountConfigurationUpdate",
    "ActiveStock",
    "Activity",
    "AlpacaModel",
    "Asset",
    "AssetClass",
    "AssetKind",
    "AssetsQuery",
    "Bar",
    "BarsPage",
    "CalendarDay",
    "CancelOrderResult",
    "Clock",
    "ClosePositionRequest",
    "ClosePositionResult",
    "CorporateAction",
    "CorporateActionAnnouncement",
    "CorporateActionType",
    "CorporateActionsPage",
    "CorporateActionsQuery",
    "Greeks",
    "Locate",
    "LocateFee",
    "LocateQuote",
    "LocateQuoteError",
    "LocateQuotes",
    "LocateRequest",
    "LocateStatus",
    "LocatesPage",
    "Money",
    "MostActives",
    "Mover",
    "Movers",
    "NewsArticle",
    "NewsImage",
    "NewsPage",
    "NewsQuery",
    "Notional",
    "OptionChainPage",
    "OptionChainQuery",
    "OptionContract",
    "OptionContractsPage",
    "OptionContractsQuery",
    "OptionFeed",
    "OptionLeg",
    "OptionStyle",
    "OptionSymbol",
    "OptionType",
    "Order",
    "OrderClass",
    "OrderRequest",
    "OrderSide",
    "OrderStatusFilter",
    "OrderType",
    "Orderbook",
    "OrderbookLevel",
    "Percentage",
    "PortfolioHistory",
    "Position",
    "PositionIntent",
    "Price",
    "Quantity",
    "Quote",
    "QuotesPage",
    "ReplaceOrderRequest",
    "RequestModel",
    "Snapshot",
    "SortDirection",
    "StockFeed",
    "StopLoss",
    "StrikePrice",
    "TakeProfit",
    "TimeInForce",
    "Trade",
    "TradesPage",
    "TrailPercent",
    "Watchlist",
    "WatchlistRequest",
    "asset_kind",
    "bounded_decimal",
    "format_time",
    "is_crypto_symbol",
    "is_isin",
    "is_option_symbol",
    "normalize_symbol",
    "plain_decimals",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module_name in _MODULES:
            module = importlib.import_module(f"{__name__}.{module_name}")
            if name in vars(module):
                value = vars(module)[name]
                globals()[name] = value  # the next lookup is a plain attribute
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
