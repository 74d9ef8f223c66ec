"""Parameter types shared by the tools: what an agent may pass, with its bounds and description."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from alpaca_vault.broker.models import normalize_symbol

Environment = Literal["paper", "live"]

CredentialRef = Annotated[
    str | None,
    Field(
        description="Credential name or id. May be omitted when you have exactly one active credential; "
        "list_credentials shows them."
    ),
]

Symbol = Annotated[
    str, Field(min_length=1, max_length=32, description="Ticker like 'AAPL' or pair like 'BTC/USD'.")
]

Price = Annotated[Decimal | None, Field(gt=0)]

TimeInForce = Literal["day", "gtc", "ioc", "fok", "opg", "cls"]


class InvalidArgument(ValueError):
    """A tool's argument (or combination of arguments) is refused before anything is done."""


def symbol_of(value: str) -> str:
    """The symbol upper-cased and checked; refused as an argument error when it cannot be one."""
    try:
        return normalize_symbol(value)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
