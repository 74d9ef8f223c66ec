"""Option contract search and JSON (``/v2/options/contracts``), over the grid in :mod:`.assets`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from alpaca_vault.simulator.assets import (
    EXPIRATION_HORIZON_DAYS,
    OPTION_UNDERLYINGS,
    UNIVERSE,
    Asset,
    expirations,
    option_contract,
    strikes,
)
from alpaca_vault.simulator.books import number
from alpaca_vault.simulator.clock import NEW_YORK
from alpaca_vault.simulator.errors import invalid
from alpaca_vault.simulator.prices import PricePath


@dataclass(frozen=True)
class ContractFilter:
    underlyings: list[str]
    first_expiration: date
    last_expiration: date
    option_type: str | None = None
    strike_low: Decimal | None = None
    strike_high: Decimal | None = None
    root_symbol: str | None = None
    include_expired: bool = False


def contracts(query: ContractFilter, today: date) -> Iterator[Asset]:
    """Contracts in a stable order (underlying, expiration, strike, call before put)."""
    first = query.first_expiration if query.include_expired else max(query.first_expiration, today)
    last = min(query.last_expiration, today + timedelta(days=EXPIRATION_HORIZON_DAYS))
    for underlying in sorted(query.underlyings):
        if underlying not in OPTION_UNDERLYINGS or (query.root_symbol and query.root_symbol != underlying):
            continue
        grid = [
            s
            for s in strikes(underlying)
            if (query.strike_low is None or s >= query.strike_low)
            and (query.strike_high is None or s <= query.strike_high)
        ]
        for expiration in expirations(first, last):
            for strike in grid:
                for option_type in ("call", "put"):
                    if query.option_type in (None, option_type):
                        yield option_contract(underlying, expiration, option_type, strike)


def contract_by_id(contract_id: str, today: date) -> Asset | None:
    """A contract by id, searching the listed grid (ids are hashes of symbols, not reversible)."""
    if len(contract_id) != 36:
        return None
    window = timedelta(days=EXPIRATION_HORIZON_DAYS)
    query = ContractFilter(list(OPTION_UNDERLYINGS), today - window, today + window, include_expired=True)
    return next((c for c in contracts(query, today) if c.id == contract_id), None)


def page(items: Iterator[Asset], limit: int, page_token: str | None) -> tuple[list[Asset], str | None]:
    """One page of ``limit`` contracts after the one the token names (the token is an offset)."""
    offset = 0
    if page_token:
        try:
            offset = int(base64.urlsafe_b64decode(page_token.encode()).decode())
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise invalid("invalid page_token") from None
    chosen: list[Asset] = []
    for index, item in enumerate(items):
        if index < offset:
            continue
        if len(chosen) == limit:
            return chosen, base64.urlsafe_b64encode(str(index).encode()).decode()
        chosen.append(item)
    return chosen, None


def contract_json(contract: Asset, prices: PricePath, now: float, last_close: float) -> dict[str, Any]:
    assert contract.expiration is not None and contract.underlying is not None and contract.strike is not None
    today = datetime.fromtimestamp(now, NEW_YORK).date()
    active = contract.expiration >= today
    close_date = datetime.fromtimestamp(last_close, NEW_YORK).date().isoformat()
    return {
        "id": contract.id,
        "symbol": contract.symbol,
        "name": contract.name,
        "status": "active" if active else "inactive",
        "tradable": active,
        "expiration_date": contract.expiration.isoformat(),
        "root_symbol": contract.underlying,
        "underlying_symbol": contract.underlying,
        "underlying_asset_id": UNIVERSE[contract.underlying].id,
        "type": contract.option_type,
        "style": "american",
        "strike_price": number(contract.strike),
        "multiplier": "100",
        "size": "100",
        "open_interest": str(1 + (int(contract.strike) * 37 + contract.expiration.toordinal()) % 5000),
        "open_interest_date": close_date,
        "close_price": number(prices.price(contract.symbol, last_close)),
        "close_price_date": close_date,
        "ppind": True,
    }
