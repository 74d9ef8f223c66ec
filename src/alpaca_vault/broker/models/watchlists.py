"""Watchlists: named lists of symbols kept at Alpaca per account."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, field_validator

from .base import AlpacaModel, RequestModel
from .reference import Asset
from .symbols import normalize_symbol

MAX_WATCHLIST_SYMBOLS = 1000
MAX_WATCHLIST_NAME = 64


class Watchlist(AlpacaModel):
    id: str
    name: str
    account_id: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    assets: list[Asset] | None = None


class WatchlistRequest(RequestModel):
    """The body of creating a watchlist or replacing its name and symbols."""

    name: str = Field(min_length=1, max_length=MAX_WATCHLIST_NAME, description="The watchlist's name.")
    symbols: list[str] | None = Field(
        default=None, max_length=MAX_WATCHLIST_SYMBOLS, description="Its symbols, in order."
    )

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        value = value.strip()
        if not value or not value.isprintable():
            raise ValueError("a watchlist name is printable text, 1 to 64 characters.")
        return value

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(normalize_symbol(s) for s in value))

    def to_alpaca(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude_none=True)
