"""Black-Scholes prices, greeks and implied volatility for European options (no dividends).

Listed US equity options are American; without dividends an American call is worth the same as
the European one, and the simulator accepts that approximation for puts too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RISK_FREE_RATE = 0.045
_MIN_YEARS = 1 / (365 * 24 * 60)  # a minute: keeps d1 finite at expiry


def _cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


@dataclass(frozen=True)
class Greeks:
    delta: float
    gamma: float
    theta: float  # per calendar day
    vega: float  # per volatility point (0.01)
    rho: float  # per rate point (0.01)


def _d1_d2(spot: float, strike: float, years: float, vol: float, rate: float) -> tuple[float, float]:
    years = max(years, _MIN_YEARS)
    root = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * years) / root
    return d1, d1 - root


def price(
    call: bool, spot: float, strike: float, years: float, vol: float, rate: float = RISK_FREE_RATE
) -> float:
    if years <= 0:
        return max(0.0, spot - strike) if call else max(0.0, strike - spot)
    d1, d2 = _d1_d2(spot, strike, years, vol, rate)
    discount = math.exp(-rate * years)
    if call:
        return spot * _cdf(d1) - strike * discount * _cdf(d2)
    return strike * discount * _cdf(-d2) - spot * _cdf(-d1)


def greeks(
    call: bool, spot: float, strike: float, years: float, vol: float, rate: float = RISK_FREE_RATE
) -> Greeks:
    years = max(years, _MIN_YEARS)
    d1, d2 = _d1_d2(spot, strike, years, vol, rate)
    discount = math.exp(-rate * years)
    root_t = math.sqrt(years)
    gamma = _pdf(d1) / (spot * vol * root_t)
    vega = spot * _pdf(d1) * root_t / 100
    decay = -spot * _pdf(d1) * vol / (2 * root_t)
    if call:
        delta = _cdf(d1)
        theta = (decay - rate * strike * discount * _cdf(d2)) / 365
        rho = strike * years * discount * _cdf(d2) / 100
    else:
        delta = _cdf(d1) - 1
        theta = (decay + rate * strike * discount * _cdf(-d2)) / 365
        rho = -strike * years * discount * _cdf(-d2) / 100
    return Greeks(delta=delta, gamma=gamma, theta=theta, vega=vega, rho=rho)


def implied_volatility(
    call: bool, premium: float, spot: float, strike: float, years: float, rate: float = RISK_FREE_RATE
) -> float | None:
    """The volatility at which the model gives ``premium`` (bisection), or None below intrinsic value."""
    if years <= 0:
        return None
    low, high = 1e-4, 5.0
    if premium < price(call, spot, strike, years, low, rate) or premium > price(
        call, spot, strike, years, high, rate
    ):
        return None
    for _ in range(60):
        mid = (low + high) / 2
        if price(call, spot, strike, years, mid, rate) < premium:
            low = mid
        else:
            high = mid
    return (low + high) / 2
