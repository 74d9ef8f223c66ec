"""Symbols and which asset class each names: stock tickers, crypto pairs, OCC option contract symbols."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

AssetKind = Literal["stock", "crypto", "option"]

# Symbols Alpaca trades: stocks (AAPL, BRK.B), crypto pairs (BTC/USD), option contracts
# (AAPL240621C00190000). The first character must be alphanumeric so "." and ".." can never
# become path segments.
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9.\-/]{0,31}$")
# OCC: root (1-6), expiration YYMMDD, C or P, strike x 1000 in 8 digits.
OPTION_SYMBOL_PATTERN = re.compile(r"^([A-Z][A-Z0-9]{0,5})(\d{6})([CP])(\d{8})$")
MAX_SYMBOL_LENGTH = 32
# ISIN (fixed income: Treasuries, bonds): country code, nine alphanumerics, a check digit.
ISIN_PATTERN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")


def normalize_symbol(value: str) -> str:
    """Upper-case and check a symbol; raises ValueError with what a symbol looks like."""
    if not isinstance(value, str) or len(value) > MAX_SYMBOL_LENGTH + 8:
        raise ValueError(f"a symbol is at most {MAX_SYMBOL_LENGTH} characters.")
    symbol = value.strip().upper()
    if not SYMBOL_PATTERN.match(symbol):
        raise ValueError(
            f"{value!r} is not a valid symbol: use a ticker like 'AAPL' or 'BRK.B', "
            "a crypto pair like 'BTC/USD', or an OCC option symbol like 'AAPL250620C00200000'."
        )
    return symbol


def is_crypto_symbol(symbol: str) -> bool:
    """Crypto pairs are written BASE/QUOTE (BTC/USD); stock tickers never contain a slash."""
    return "/" in symbol


def is_option_symbol(symbol: str) -> bool:
    """An OCC option contract symbol such as AAPL250620C00200000."""
    return OPTION_SYMBOL_PATTERN.match(symbol) is not None


def is_isin(symbol: str) -> bool:
    """An ISIN with a valid check digit (Alpaca names fixed-income securities by ISIN, like US912797SX61).

    No stock ticker is twelve characters ending in a digit, so an ISIN never shadows one.
    """
    if ISIN_PATTERN.match(symbol) is None:
        return False
    digits = "".join(str(int(ch, 36)) for ch in symbol[:-1])
    total = 0
    for index, ch in enumerate(reversed(digits)):  # Luhn over the letters-as-numbers expansion
        value = int(ch) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10 == int(symbol[-1])


def asset_kind(symbol: str) -> AssetKind:
    """Which market a (normalized) symbol belongs to."""
    if is_crypto_symbol(symbol):
        return "crypto"
    if is_option_symbol(symbol):
        return "option"
    return "stock"


@dataclass(frozen=True)
class OptionSymbol:
    """The parts of an OCC option symbol."""

    underlying: str
    expiration: dt.date
    type: Literal["call", "put"]
    strike: Decimal

    @classmethod
    def parse(cls, symbol: str) -> OptionSymbol:
        match = OPTION_SYMBOL_PATTERN.match(symbol.strip().upper())
        if match is None:
            raise ValueError(f"{symbol!r} is not an OCC option symbol (like AAPL250620C00200000).")
        root, date, kind, strike = match.groups()
        try:
            expiration = dt.datetime.strptime(date, "%y%m%d").date()
        except ValueError:
            raise ValueError(f"{symbol!r} has no valid expiration date (YYMMDD after the root).") from None
        return cls(root, expiration, "call" if kind == "C" else "put", Decimal(strike) / 1000)
