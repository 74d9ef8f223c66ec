"""Option contracts: what Alpaca lists, and how to search for them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from .base import AlpacaModel, Money, RequestModel, StrikePrice
from .symbols import normalize_symbol

OptionType = Literal["call", "put"]
OptionStyle = Literal["american", "european"]
MAX_UNDERLYINGS = 100


class OptionContract(AlpacaModel):
    id: str
    symbol: str
    name: str | None = None
    status: str | None = None
    tradable: bool | None = None
    expiration_date: dt.date | None = None
    root_symbol: str | None = None
    underlying_symbol: str | None = None
    underlying_asset_id: str | None = None
    type: str | None = None
    style: str | None = None
    strike_price: Money | None = None
    multiplier: Money | None = None
    size: Money | None = None
    open_interest: Money | None = None
    open_interest_date: dt.date | None = None
    close_price: Money | None = None
    close_price_date: dt.date | None = None


class OptionContractsPage(AlpacaModel):
    option_contracts: list[OptionContract]
    next_page_token: str | None = None


def _root(value: str | None) -> str | None:
    return None if value is None else normalize_symbol(value)


#: An option root symbol (AAPL, or AAPL1 after an adjustment), normalized like a ticker.
RootSymbol = Annotated[str | None, Field(max_length=8), AfterValidator(_root)]


def _check_ranges(query: OptionContractsQuery | OptionChainQuery) -> None:
    """A strike range and an expiration range each run low to high."""
    lo, hi = query.strike_price_gte, query.strike_price_lte
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"strike_price_gte ({lo}) is above strike_price_lte ({hi}).")
    first, last = query.expiration_date_gte, query.expiration_date_lte
    if first is not None and last is not None and first > last:
        raise ValueError(f"expiration_date_gte ({first}) is after expiration_date_lte ({last}).")


class OptionContractsQuery(RequestModel):
    """A search of option contracts: GET /v2/options/contracts."""

    underlying_symbols: list[str] | None = Field(
        default=None, max_length=MAX_UNDERLYINGS, description="Underlying tickers, e.g. ['AAPL', 'SPY']."
    )
    status: Literal["active", "inactive"] | None = None
    expiration_date: dt.date | None = None
    expiration_date_gte: dt.date | None = None
    expiration_date_lte: dt.date | None = None
    root_symbol: RootSymbol = None
    type: OptionType | None = None
    style: OptionStyle | None = None
    strike_price_gte: StrikePrice | None = None
    strike_price_lte: StrikePrice | None = None
    limit: int | None = Field(default=None, ge=1, le=10_000)
    page_token: str | None = Field(default=None, max_length=512)

    @field_validator("underlying_symbols")
    @classmethod
    def _symbols(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [normalize_symbol(s) for s in value]

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        _check_ranges(self)
        first, last = self.expiration_date_gte, self.expiration_date_lte
        if self.expiration_date is not None and (first is not None or last is not None):
            raise ValueError("give expiration_date, or a range (expiration_date_gte/lte), not both.")
        return self

    def to_params(self) -> dict[str, Any]:
        params = self.model_dump(mode="json", exclude_none=True)
        if self.underlying_symbols is not None:
            params["underlying_symbols"] = ",".join(self.underlying_symbols)
        return params


class OptionChainQuery(RequestModel):
    """Which contracts of an underlying to snapshot: GET /v1beta1/options/snapshots/{underlying}."""

    type: OptionType | None = None
    strike_price_gte: StrikePrice | None = None
    strike_price_lte: StrikePrice | None = None
    expiration_date: dt.date | None = None
    expiration_date_gte: dt.date | None = None
    expiration_date_lte: dt.date | None = None
    root_symbol: RootSymbol = None
    limit: int | None = Field(default=None, ge=1, le=1000)
    page_token: str | None = Field(default=None, max_length=512)

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        _check_ranges(self)
        return self

    def to_params(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
