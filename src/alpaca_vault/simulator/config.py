"""Start-up configuration of the simulator: accounts, price seed, clock mode, faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
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
    # always_open fills orders at any hour; GET /v2/clock still tells the exchange's real session
    # (closed at 02:38 New York) unless this asks it to say the market is open.
    report_always_open: bool = False
    # A JSON file that keeps the books across restarts (see state_file.py); None: in memory only.
    state_file: str | None = None
    faults: list[FaultSpec] = field(default_factory=list)
    # Shares (or coins) a resting order can execute per second while the price crosses it;
    # bigger orders fill over several seconds and show partially_filled on the way.
    liquidity: Decimal = Decimal("10000")


ACCOUNTS_ENV = "ALPACA_SIMULATOR_ACCOUNTS"


def parse_accounts(text: str) -> list[AccountSpec]:
    """Accounts as ``KEY:SECRET[:CASH]`` entries, one per line or comma-separated (``#`` comments).

    The form of ``--account``, of an ``--accounts-file`` and of ``$ALPACA_SIMULATOR_ACCOUNTS``;
    a ValueError names the entry by position, never its secret.
    """
    specs: list[AccountSpec] = []
    entries = [e.strip() for line in text.splitlines() for e in line.split("#", 1)[0].split(",")]
    for index, entry in enumerate((e for e in entries if e), start=1):
        parts = entry.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise ValueError(f"account {index}: expected KEY:SECRET or KEY:SECRET:CASH")
        try:
            cash = Decimal(parts[2]) if len(parts) == 3 else Decimal("100000")
        except InvalidOperation:
            raise ValueError(f"account {index}: cash {parts[2]!r} is not a number") from None
        if not cash.is_finite() or not 0 <= cash < 10**12:
            raise ValueError(f"account {index}: cash must be >= 0 and below 1,000,000,000,000")
        specs.append(AccountSpec(api_key=parts[0], secret_key=parts[1], cash=cash))
    return specs
