"""Parameter types shared by the tools: what an agent may pass, with its bounds and description."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, SecretStr

from alpaca_vault.broker.models import Notional as Notional
from alpaca_vault.broker.models import Percentage as Percentage
from alpaca_vault.broker.models import Price as Price
from alpaca_vault.broker.models import Quantity as Quantity
from alpaca_vault.broker.models import StrikePrice as StrikePrice
from alpaca_vault.broker.models import TrailPercent as TrailPercent
from alpaca_vault.broker.models import normalize_symbol

Environment = Literal["paper", "live"]

_Tool = TypeVar("_Tool", bound=Callable[..., Any])


def same_arguments_as(model: Callable[..., Any]) -> Callable[[_Tool], _Tool]:
    """Publish ``model``'s argument list (names, types, bounds, descriptions) as the decorated tool's own.

    One declaration for tools that take the same arguments (alpaca_preview_order takes exactly what
    alpaca_place_order takes): the decorated function receives them as keyword arguments (``**kwargs``).
    The SDK builds the input schema from the published signature; the return annotation stays the
    decorated function's own.
    """

    def publish(tool: _Tool) -> _Tool:
        returns = inspect.signature(tool, eval_str=True).return_annotation
        tool.__signature__ = inspect.signature(model, eval_str=True).replace(  # type: ignore[attr-defined]
            return_annotation=returns
        )
        return tool

    return publish


# Every string and list argument has a length bound (issue #10, point 1), declared here so the schemas
# show it (maxLength, maxItems) and a longer value is refused before anything reads it.
NAME_MAX = 64  # credential names; an id (UUID, 36) fits too
ID_MAX = 64  # Alpaca's ids are UUIDs (36); room for other shapes, never for a payload
CLIENT_ORDER_ID_MAX = 128  # Alpaca's own limit

CredentialRef = Annotated[
    str | None,
    Field(
        max_length=NAME_MAX,
        # Paid for in every tool (over 40 of them): list_credentials and the server's instructions say more.
        description="Credential name or id; omit it if only one is active.",
    ),
]


# The bounded shapes; a tool adds its own description: ``Annotated[OrderId, Field(description=...)]``.
CredentialName = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
OrderId = Annotated[str, Field(min_length=1, max_length=ID_MAX)]
ClientOrderId = Annotated[str, Field(min_length=1, max_length=CLIENT_ORDER_ID_MAX)]
KeyArgument = Annotated[SecretStr, Field(max_length=256)]  # Alpaca keys are at most 256 characters

# Decimal arguments: the broker's bounded types (Quantity, Notional, Price, TrailPercent, Percentage,
# StrikePrice; magnitude, scale, and at most 40 characters as text), checked when the arguments are read,
# so an agent hears the allowed range before anything is built.

Symbol = Annotated[
    str, Field(min_length=1, max_length=32, description="Ticker like 'AAPL' or pair like 'BTC/USD'.")
]

TimeInForce = Literal["day", "gtc", "ioc", "fok", "opg", "cls"]


class InvalidArgument(ValueError):
    """A tool's argument (or combination of arguments) is refused before anything is done."""


def symbol_of(value: str) -> str:
    """The symbol upper-cased and checked; refused as an argument error when it cannot be one."""
    try:
        return normalize_symbol(value)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


# --- issue #15: several symbols, data feeds, pages ---------------------------------------------

Symbols = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2000,
        description="Up to 100 comma-separated symbols, markets mixed: stocks (AAPL), crypto pairs (BTC/USD), "
        "OCC options (AAPL261218C00190000).",
    ),
]

StockFeed = Annotated[
    Literal["iex", "sip", "delayed_sip"] | None,
    Field(description="Stock feed: iex (free), sip (all US exchanges, paid plan); default: the server's."),
]

PageToken = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=512,
        description="next_page_token of the previous call, other arguments unchanged.",
    ),
]

SymbolList = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=40)]] | None,
    Field(max_length=100, description="Only these symbols (at most 100)."),
]


def symbols_of(value: str) -> list[str]:
    """Comma-separated symbols, upper-cased, checked and de-duplicated; refused as an argument error."""
    raw = [part for part in value.split(",") if part.strip()]
    if not raw:
        raise InvalidArgument("Give at least one symbol, like 'AAPL' or 'AAPL,BTC/USD'.")
    if len(raw) > 100:
        raise InvalidArgument(f"Give at most 100 symbols in one call (got {len(raw)}).")
    return list(dict.fromkeys(symbol_of(part) for part in raw))


def symbol_list_of(values: list[str] | None) -> list[str] | None:
    return None if values is None else list(dict.fromkeys(symbol_of(v) for v in values))


def as_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """A time without a zone is read as UTC, like every time we show (and comparable with one that has)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment
