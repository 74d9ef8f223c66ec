"""A deterministic, seeded price path per symbol, and option premiums from it.

The path is a sum of seeded sine waves (days down to a minute) plus a small per-second jitter,
so the price at any instant is computed in O(1) from (seed, symbol, time): the same seed and
the same wall-clock time always give the same price, with no state to replay. An option's
premium is Black-Scholes on its underlying's path, with a volatility smile around the money.
"""

from __future__ import annotations

import math
import random
import zlib
from datetime import datetime, time
from decimal import ROUND_HALF_UP, Decimal

from alpaca_vault.simulator import black_scholes
from alpaca_vault.simulator.assets import OPTION_UNDERLYINGS, UNIVERSE, Asset, find_asset
from alpaca_vault.simulator.clock import NEW_YORK

_CENT = Decimal("0.01")
_YEAR_SECONDS = 365 * 86400.0


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
        asset = UNIVERSE.get(symbol)
        if asset is None:
            return self._premium(symbol, t)
        x = 0.0
        for (period, amp), phase in zip(_WAVES, self._phases[symbol], strict=True):
            x += amp * math.sin(2 * math.pi * t / period + phase)
        # Per-second jitter from an integer hash: deterministic, no state.
        h = ((int(t) * 2654435761) ^ self._salt[symbol]) & 0xFFFFFFFF
        x += _JITTER * (h / 0xFFFFFFFF - 0.5)
        return asset.base_price * math.exp(x)

    # ------------------------------------------------------------------ options

    def years_to_expiry(self, contract: Asset, t: float) -> float:
        assert contract.expiration is not None
        close = datetime.combine(contract.expiration, time(16), NEW_YORK).timestamp()
        return max(0.0, (close - t) / _YEAR_SECONDS)

    def volatility(self, contract: Asset, spot: float) -> float:
        """The contract's volatility: its underlying's at the money, rising away from it (a smile)."""
        assert contract.underlying is not None and contract.strike is not None
        moneyness = math.log(float(contract.strike) / spot)
        return OPTION_UNDERLYINGS[contract.underlying] * (1 + 2.0 * moneyness * moneyness)

    def _premium(self, symbol: str, t: float) -> float:
        contract = find_asset(symbol)
        if contract is None or not contract.is_option:
            raise KeyError(symbol)
        assert contract.underlying is not None and contract.strike is not None
        spot = self.raw(contract.underlying, t)
        value = black_scholes.price(
            contract.option_type == "call",
            spot,
            float(contract.strike),
            self.years_to_expiry(contract, t),
            self.volatility(contract, spot),
        )
        return max(0.01, value)

    # ------------------------------------------------------------------ prices and quotes

    def price(self, symbol: str, t: float) -> Decimal:
        """The trade price at unix time ``t``, in cents."""
        return Decimal(repr(self.raw(symbol, t))).quantize(_CENT, rounding=ROUND_HALF_UP)

    def quote(self, symbol: str, t: float) -> tuple[Decimal, Decimal]:
        """(bid, ask) around the trade price: one cent wide, wider for crypto and options."""
        mid = self.price(symbol, t)
        asset = UNIVERSE.get(symbol)
        if asset is None:  # an option: 2% wide, at least a cent each side; a bid can be zero
            half = max(_CENT, (mid * Decimal("0.02")).quantize(_CENT))
            return max(Decimal(0), mid - half), mid + half
        half = max(_CENT, (mid * Decimal("0.0001")).quantize(_CENT)) if asset.is_crypto else _CENT
        return max(_CENT, mid - half), mid + half

    def bar(self, symbol: str, start: float, seconds: float) -> tuple[float, float, float, float]:
        """(open, high, low, close) of the path over ``[start, start + seconds)``."""
        steps = max(2, min(32, int(seconds // 60) + 1))
        samples = [self.raw(symbol, start + seconds * i / steps) for i in range(steps)]
        samples.append(self.raw(symbol, start + seconds - 1))
        return samples[0], max(samples), min(samples), samples[-1]

    def volume(self, symbol: str, start: float, seconds: float) -> int:
        salt = self._salt.get(symbol) or zlib.crc32(f"{self.seed}:{symbol}".encode())
        h = ((int(start) * 40503) ^ salt) & 0xFFFF
        asset = UNIVERSE.get(symbol)
        per_minute = 20 if asset is None else (3 if asset.is_crypto else 5_000)
        return max(1, int(per_minute * max(1.0, seconds / 60) * (0.5 + h / 0xFFFF)))
