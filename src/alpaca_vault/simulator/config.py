"""Start-up configuration of the simulator: accounts, price seed, clock mode, faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

ClockMode = Literal["always_open", "exchange_hours"]


@dataclass(frozen=True)
class AccountSpec:
    """One paper account to create at start (and again on reset)."""

    api_key: str
    secret_key: str
    cash: Decimal = Decimal("100000")
    account_number: str | None = None
    status: str = "ACTIVE"


@dataclass(frozen=True)
class FaultSpec:
    """A fault applied to requests whose ``"METHOD PATH"`` matches the ``match`` glob.

    ``status`` is returned with probability ``rate`` for the next ``count`` matching requests
    (``None``: until cleared). ``rate_limit_per_minute`` answers 429 once a minute's budget is
    spent. ``lost_response`` applies the request and then loses its answer: ``"504"`` sends a
    gateway timeout, ``"hang"`` delays the real answer by ``latency_ms``, ``"drop"`` closes the
    connection mid-response.
    """

    match: str = "* *"
    latency_ms: int = 0
    status: int | None = None
    rate: float = 1.0
    count: int | None = None
    retry_after: int = 1
    rate_limit_per_minute: int | None = None
    lost_response: Literal["504", "hang", "drop"] | None = None


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything :func:`create_app` needs; ``reset`` returns the app to exactly this."""

    accounts: list[AccountSpec] = field(default_factory=list)
    seed: int = 7
    clock: ClockMode = "always_open"
    faults: list[FaultSpec] = field(default_factory=list)
    # Shares (or coins) a resting order can execute per second while the price crosses it;
    # bigger orders fill over several seconds and show partially_filled on the way.
    liquidity: Decimal = Decimal("10000")
