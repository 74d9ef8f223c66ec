"""The tradable universe: stocks and ETFs, crypto pairs, and option contracts on a few underlyings.

Option contracts are not stored: every Friday is an expiration and each underlying has a fixed
strike grid around its base price, so an OCC symbol (``AAPL250117C00190000``) names a contract
exactly when it lies on that grid. Ids are stable (uuid5 of the symbol), like Alpaca's.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal


@dataclass(frozen=True)
class Asset:
    symbol: str  # Alpaca's form: "AAPL", "BTC/USD", "AAPL250117C00190000"
    name: str
    exchange: str
    asset_class: str  # "us_equity" | "crypto" | "us_option"
    base_price: float
    fractionable: bool = True
    id: str = ""
    multiplier: int = 1  # an option contract is for 100 shares
    underlying: str | None = None  # options only, with the three below
    expiration: date | None = None
    option_type: str | None = None  # "call" | "put"
    strike: Decimal | None = None

    @property
    def is_crypto(self) -> bool:
        return self.asset_class == "crypto"

    @property
    def is_option(self) -> bool:
        return self.asset_class == "us_option"

    @property
    def position_symbol(self) -> str:
        """Alpaca lists crypto positions without the slash (``BTCUSD``)."""
        return self.symbol.replace("/", "")


_EQUITIES: list[tuple[str, str, str, float, bool]] = [
    ("AAPL", "Apple Inc. Common Stock", "NASDAQ", 190.0, True),
    ("MSFT", "Microsoft Corporation Common Stock", "NASDAQ", 410.0, True),
    ("NVDA", "NVIDIA Corporation Common Stock", "NASDAQ", 120.0, True),
    ("AMZN", "Amazon.com, Inc. Common Stock", "NASDAQ", 180.0, True),
    ("GOOGL", "Alphabet Inc. Class A Common Stock", "NASDAQ", 165.0, True),
    ("META", "Meta Platforms, Inc. Class A Common Stock", "NASDAQ", 500.0, True),
    ("TSLA", "Tesla, Inc. Common Stock", "NASDAQ", 240.0, True),
    ("AMD", "Advanced Micro Devices, Inc. Common Stock", "NASDAQ", 160.0, True),
    ("NFLX", "Netflix, Inc. Common Stock", "NASDAQ", 640.0, True),
    ("INTC", "Intel Corporation Common Stock", "NASDAQ", 31.0, True),
    ("JPM", "JPMorgan Chase & Co. Common Stock", "NYSE", 200.0, True),
    ("V", "Visa Inc.", "NYSE", 275.0, True),
    ("KO", "Coca-Cola Company (The) Common Stock", "NYSE", 62.0, True),
    ("DIS", "Walt Disney Company (The) Common Stock", "NYSE", 100.0, True),
    ("XOM", "Exxon Mobil Corporation Common Stock", "NYSE", 115.0, True),
    ("BRK.B", "Berkshire Hathaway Inc. New Common Stock", "NYSE", 410.0, True),
    ("SPY", "SPDR S&P 500 ETF Trust", "ARCA", 520.0, True),
    ("QQQ", "Invesco QQQ Trust, Series 1", "NASDAQ", 440.0, True),
    ("IWM", "iShares Russell 2000 ETF", "ARCA", 205.0, True),
    ("GME", "GameStop Corporation Common Stock", "NYSE", 23.0, False),
]
# Hard-to-borrow stocks (a short sale needs a locate first): shares one account may locate per day, and
# the locate fee per share in USD. Every other stock is easy to borrow.
HARD_TO_BORROW: dict[str, tuple[int, Decimal]] = {"GME": (5_000, Decimal("0.0450"))}
_CRYPTO: list[tuple[str, str, float]] = [
    ("BTC/USD", "Bitcoin  / US Dollar", 65000.0),
    ("ETH/USD", "Ethereum  / US Dollar", 3200.0),
    ("SOL/USD", "Solana  / US Dollar", 150.0),
]
# Underlyings with listed options, and each one's implied volatility at the money.
OPTION_UNDERLYINGS: dict[str, float] = {
    "AAPL": 0.25,
    "MSFT": 0.22,
    "NVDA": 0.45,
    "TSLA": 0.55,
    "SPY": 0.15,
    "QQQ": 0.19,
}
_STRIKE_SPAN = 0.3  # strikes from 70% to 130% of the underlying's base price
EXPIRATION_HORIZON_DAYS = 366  # contracts list a year of weekly (Friday) expirations


def _asset_id(symbol: str) -> str:
    # Stable ids across restarts, like Alpaca's fixed asset ids.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"alpaca-vault-simulator/asset/{symbol}"))


UNIVERSE: dict[str, Asset] = {
    **{
        sym: Asset(sym, name, exch, "us_equity", price, frac, _asset_id(sym))
        for sym, name, exch, price, frac in _EQUITIES
    },
    **{
        sym: Asset(sym, name, "CRYPTO", "crypto", price, True, _asset_id(sym)) for sym, name, price in _CRYPTO
    },
}
_BY_ALIAS: dict[str, Asset] = {}
for _a in UNIVERSE.values():
    _BY_ALIAS[_a.symbol] = _a
    _BY_ALIAS[_a.position_symbol] = _a
    _BY_ALIAS[_a.id] = _a

_OCC = re.compile(r"^([A-Z]{1,6})(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")
_option_ids: dict[str, str] = {}  # contract id -> OCC symbol, filled as contracts are named


def strike_step(base_price: float) -> Decimal:
    if base_price >= 200:
        return Decimal(5)
    if base_price >= 50:
        return Decimal("2.5")
    return Decimal(1)


@functools.cache  # one grid per listed underlying, asked for on every OCC symbol parsed
def strikes(underlying: str) -> tuple[Decimal, ...]:
    """The strike grid of an underlying: multiples of its step within 30% of its base price."""
    base = UNIVERSE[underlying].base_price
    step = strike_step(base)
    low = int(Decimal(repr(base * (1 - _STRIKE_SPAN))) / step) + 1
    high = int(Decimal(repr(base * (1 + _STRIKE_SPAN))) / step)
    return tuple(step * n for n in range(low, high + 1))


def expirations(first: date, last: date) -> list[date]:
    """Every Friday in [first, last]: weekly expirations for every listed underlying."""
    day = first + timedelta(days=(4 - first.weekday()) % 7)
    days = []
    while day <= last:
        days.append(day)
        day += timedelta(days=7)
    return days


def occ_symbol(underlying: str, expiration: date, option_type: str, strike: Decimal) -> str:
    kind = "C" if option_type == "call" else "P"
    return f"{underlying}{expiration:%y%m%d}{kind}{int(strike * 1000):08d}"


def option_contract(underlying: str, expiration: date, option_type: str, strike: Decimal) -> Asset:
    symbol = occ_symbol(underlying, expiration, option_type, strike)
    month = expiration.strftime("%b")
    name = f"{underlying} {month} {expiration.day} {expiration.year} {strike.normalize():f} {option_type.title()}"
    asset = Asset(
        symbol=symbol,
        name=name,
        exchange="",
        asset_class="us_option",
        base_price=0.0,
        fractionable=False,
        id=_asset_id(symbol),
        multiplier=100,
        underlying=underlying,
        expiration=expiration,
        option_type=option_type,
        strike=strike,
    )
    _option_ids[asset.id] = symbol
    return asset


# A symbol always names the same contract (or none), and an Asset is immutable. A price bar samples a
# contract's premium up to 33 times and an option chain page prices 100 contracts, each sample naming
# the contract by symbol: without the cache most of a chain request went to rebuilding the same Assets
# (a uuid5 each). Bounded, since symbols come from requests.
@functools.lru_cache(maxsize=4096)
def parse_occ(symbol: str) -> Asset | None:
    """The contract an OCC symbol names, or None when it is not on any listed grid."""
    match = _OCC.match(symbol.upper())
    if match is None:
        return None
    underlying, yy, mm, dd, kind, strike_text = match.groups()
    if underlying not in OPTION_UNDERLYINGS:
        return None
    try:
        expiration = date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        return None
    strike = Decimal(int(strike_text)) / 1000
    if expiration.weekday() != 4 or strike not in strikes(underlying):
        return None
    return option_contract(underlying, expiration, "call" if kind == "C" else "put", strike)


def find_asset(symbol_or_id: str) -> Asset | None:
    """An asset by symbol (``BTC/USD`` or ``BTCUSD``), OCC option symbol, or id; None if unknown."""
    found = _BY_ALIAS.get(symbol_or_id.upper()) or _BY_ALIAS.get(symbol_or_id)
    if found is not None:
        return found
    occ = _option_ids.get(symbol_or_id)
    return parse_occ(occ or symbol_or_id)
