"""The asset universe and a deterministic, seeded price path per symbol.

The path is a sum of seeded sine waves (days down to a minute) plus a small per-second jitter,
so the price at any instant is computed in O(1) from (seed, symbol, time): the same seed and
the same wall-clock time always give the same price, with no state to replay.
"""

from __future__ import annotations

import math
import random
import uuid
import zlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Asset:
    symbol: str  # Alpaca's form: "AAPL", "BTC/USD"
    name: str
    exchange: str
    asset_class: str  # "us_equity" | "crypto"
    base_price: float
    fractionable: bool = True
    id: str = ""
    multiplier: int = 1  # an option contract is for 100 shares

    @property
    def is_option(self) -> bool:
        return self.asset_class == "us_option"

    @property
    def is_crypto(self) -> bool:
        return self.asset_class == "crypto"

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
_CRYPTO: list[tuple[str, str, float]] = [
    ("BTC/USD", "Bitcoin  / US Dollar", 65000.0),
    ("ETH/USD", "Ethereum  / US Dollar", 3200.0),
    ("SOL/USD", "Solana  / US Dollar", 150.0),
]


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


def find_asset(symbol_or_id: str) -> Asset | None:
    """An asset by symbol (``BTC/USD`` or ``BTCUSD``) or asset id; ``None`` if outside the universe."""
    return _BY_ALIAS.get(symbol_or_id.upper()) or _BY_ALIAS.get(symbol_or_id)


# (period seconds, amplitude of log-price): multi-day drift down to minute wiggles.
_WAVES = [(5 * 86400.0, 0.04), (86400.0, 0.012), (3 * 3600.0, 0.006), (2820.0, 0.003), (420.0, 0.0015)]
_JITTER = 0.0004


class PricePath:
    """Seeded price path for every asset in the universe."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._phases: dict[str, list[float]] = {}
        self._salt: dict[str, int] = {}
        self._pins: dict[str, Decimal] = {}
        for symbol in UNIVERSE:
            rng = random.Random(f"{seed}:{symbol}")
            self._phases[symbol] = [rng.uniform(0, 2 * math.pi) for _ in _WAVES]
            self._salt[symbol] = zlib.crc32(f"{seed}:{symbol}".encode())

    def pin(self, symbol: str, price: Decimal | None) -> None:
        """Hold a symbol at a fixed price (tests and demos), or release it with ``None``."""
        if price is None:
            self._pins.pop(symbol, None)
        else:
            self._pins[symbol] = price

    def pins(self) -> dict[str, Decimal]:
        return dict(self._pins)

    def raw(self, symbol: str, t: float) -> float:
        pinned = self._pins.get(symbol)
        if pinned is not None:
            return float(pinned)
        asset = UNIVERSE[symbol]
        x = 0.0
        for (period, amp), phase in zip(_WAVES, self._phases[symbol], strict=True):
            x += amp * math.sin(2 * math.pi * t / period + phase)
        # Per-second jitter from an integer hash: deterministic, no state.
        h = ((int(t) * 2654435761) ^ self._salt[symbol]) & 0xFFFFFFFF
        x += _JITTER * (h / 0xFFFFFFFF - 0.5)
        return asset.base_price * math.exp(x)

    def price(self, symbol: str, t: float) -> Decimal:
        """The trade price at unix time ``t``, in cents."""
        return Decimal(repr(self.raw(symbol, t))).quantize(_CENT, rounding=ROUND_HALF_UP)

    def quote(self, symbol: str, t: float) -> tuple[Decimal, Decimal]:
        """(bid, ask) around the trade price: one cent wide, wider for crypto."""
        mid = self.price(symbol, t)
        half = max(_CENT, (mid * Decimal("0.0001")).quantize(_CENT)) if UNIVERSE[symbol].is_crypto else _CENT
        return max(_CENT, mid - half), mid + half

    def bar(self, symbol: str, start: float, seconds: float) -> tuple[float, float, float, float]:
        """(open, high, low, close) of the path over ``[start, start + seconds)``."""
        steps = max(2, min(32, int(seconds // 60) + 1))
        samples = [self.raw(symbol, start + seconds * i / steps) for i in range(steps)]
        samples.append(self.raw(symbol, start + seconds - 1))
        return samples[0], max(samples), min(samples), samples[-1]

    def volume(self, symbol: str, start: float, seconds: float) -> int:
        h = ((int(start) * 40503) ^ self._salt[symbol]) & 0xFFFF
        per_minute = 5_000 if not UNIVERSE[symbol].is_crypto else 3
        return max(1, int(per_minute * max(1.0, seconds / 60) * (0.5 + h / 0xFFFF)))
