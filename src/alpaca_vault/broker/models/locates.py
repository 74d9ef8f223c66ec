"""Short-sale locates (Trading API ``/v1/locates``): borrowing hard-to-borrow shares before shorting them.

A locate reserves shares to borrow for one trading day (it expires at 8 pm New York time) and Alpaca
charges its fee when it accepts it. Quantities are whole round lots of 100 shares.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator

from .base import AlpacaModel, LocateFee, Money, RequestModel
from .symbols import asset_kind, normalize_symbol

LocateStatus = Literal["active", "expired", "rejected"]
#: Alpaca locates shares in round lots of 100.
LOCATE_LOT = 100
MAX_LOCATE_QTY = 10_000_000


class Locate(AlpacaModel):
    id: str
    symbol: str
    requested_qty: int
    all_or_none: bool = False
    status: str
    created_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    limit_price: Money | None = None
    located_price: Money | None = Field(default=None, description="Fee per share, USD.")
    located_qty: int | None = None
    total_fee: Money | None = Field(default=None, description="Fee charged, USD.")
    rejection_reason: str | None = None


class LocatesPage(AlpacaModel):
    locates: list[Locate] = Field(default_factory=list)
    next_page_token: str | None = None


class LocateQuote(AlpacaModel):
    symbol: str
    available_qty: int
    price: Money | None = Field(
        default=None, description="Fee per share, USD; none when nothing is available."
    )
    quoted_at: dt.datetime | None = None


class LocateQuoteError(AlpacaModel):
    symbol: str
    code: str
    message: str | None = None


class LocateQuotes(AlpacaModel):
    quotes: list[LocateQuote] = Field(default_factory=list)
    errors: list[LocateQuoteError] = Field(default_factory=list)


class LocateRequest(RequestModel):
    """The body of a locate request: a stock, whole round lots, and the most fee per share accepted."""

    symbol: str
    qty: int = Field(ge=LOCATE_LOT, le=MAX_LOCATE_QTY)
    limit_price: LocateFee | None = None
    all_or_none: bool = False

    @field_validator("symbol")
    @classmethod
    def _stock(cls, value: str) -> str:
        symbol = normalize_symbol(value)
        if asset_kind(symbol) != "stock":
            raise ValueError(
                "locates are for stocks (a ticker like GME), not crypto pairs or option contracts."
            )
        return symbol

    @field_validator("qty")
    @classmethod
    def _round_lots(cls, value: int) -> int:
        if value % LOCATE_LOT:
            raise ValueError(f"qty is in round lots of {LOCATE_LOT} shares (100, 200, ...), not {value}.")
        return value

    def to_alpaca(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude_none=True)
