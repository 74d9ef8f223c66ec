"""The trading policy of one credential: fields, bounds, and the defaults per environment.

A credential without a stored row trades under ``default_policy(environment)``:
a paper credential trades with no limits but the 30 s duplicate window; a live
one starts ``read_only`` whatever ALLOW_LIVE_TRADING says (that wall stays
beneath the policy). Only the owner changes a policy (CLI, console); no tool can.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alpaca_vault.broker.models import Money, normalize_symbol
from alpaca_vault.guard.errors import PolicyInputError

Mode = Literal["read_only", "trade"]
AssetClass = Literal["us_equity", "crypto", "us_option"]
OrderTypeName = Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
ASSET_CLASSES: tuple[AssetClass, ...] = ("us_equity", "crypto", "us_option")
ORDER_TYPES: tuple[OrderTypeName, ...] = ("market", "limit", "stop", "stop_limit", "trailing_stop")
DEFAULT_DUPLICATE_WINDOW = 30

MAX_DOLLARS = Decimal("1000000000000")  # a trillion: far above any account, far below overflow
Dollars = Annotated[Money, Field(gt=0, le=MAX_DOLLARS, decimal_places=2)]
Count = Annotated[int, Field(ge=1, le=1_000_000)]
SymbolList = Annotated[list[str], Field(max_length=500)]

# The fields an owner sets (in CLI order); everything else on ``Policy`` describes the credential.
SETTING_FIELDS = (
    "mode",
    "max_order_notional",
    "max_daily_notional",
    "max_orders_per_day",
    "max_orders_per_minute",
    "symbols",
    "deny_symbols",
    "asset_classes",
    "order_types",
    "allow_short",
    "allow_extended_hours",
    "confirm_above_notional",
    "confirm_live",
    "duplicate_window_seconds",
    "halted",
)


class PolicySettings(BaseModel):
    """What the owner decides. Validated on every change, so a stored policy is always well-formed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = Field(description="read_only: every state-changing tool is refused; trade: orders allowed.")
    max_order_notional: Dollars | None = Field(
        default=None, description="Largest estimated dollar value of one order (null: no limit)."
    )
    max_daily_notional: Dollars | None = Field(
        default=None,
        description="Largest total estimated dollar value of orders per day (America/New_York; null: none).",
    )
    max_orders_per_day: Count | None = Field(default=None, description="Orders per day (null: no limit).")
    max_orders_per_minute: Count | None = Field(default=None, description="Orders per minute (null: none).")
    symbols: SymbolList | None = Field(default=None, description="Only these symbols (null: any symbol).")
    deny_symbols: SymbolList = Field(default_factory=list, description="Never these symbols.")
    asset_classes: list[AssetClass] = Field(
        default_factory=lambda: list(ASSET_CLASSES), min_length=1, description="Asset classes allowed."
    )
    order_types: list[OrderTypeName] = Field(
        default_factory=lambda: list(ORDER_TYPES), min_length=1, description="Order types allowed."
    )
    allow_short: bool = Field(
        default=True,
        description="A sell larger than the position held, or an option spread's uncovered sell leg, is refused "
        "unless true.",
    )
    allow_extended_hours: bool = Field(default=True, description="Orders with extended_hours=true allowed.")
    confirm_above_notional: Dollars | None = Field(
        default=None, description="A human confirms orders whose estimated value is above this (null: none)."
    )
    confirm_live: bool = Field(
        default=True, description="A human confirms every state-changing call on a live credential."
    )
    duplicate_window_seconds: int = Field(
        default=DEFAULT_DUPLICATE_WINDOW,
        ge=0,
        le=86_400,
        description="The same order under a new client_order_id within this many seconds needs a human "
        "confirmation (0: off).",
    )
    halted: bool = Field(default=False, description="Kill switch: new orders and replaces are refused.")

    @field_validator("symbols", "deny_symbols")
    @classmethod
    def _symbols(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return sorted({normalize_symbol(s) for s in value})

    @field_validator("asset_classes", "order_types")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


def default_settings(environment: str) -> PolicySettings:
    """Paper: trade, no limits but the duplicate window. Live: read_only until its owner says trade."""
    return PolicySettings(mode="trade" if environment == "paper" else "read_only")


class Policy(PolicySettings):
    """The policy in force for one credential, as the owner, the agent and the checks see it."""

    credential: str = Field(description="The credential's name.")
    credential_id: uuid.UUID
    environment: Literal["paper", "live"]
    is_default: bool = Field(description="True when the owner never changed it (the environment's defaults).")
    updated_at: datetime | None = None

    @property
    def settings(self) -> PolicySettings:
        return PolicySettings.model_validate(self.model_dump(include=set(SETTING_FIELDS)))


def apply_changes(current: PolicySettings, changes: dict[str, Any]) -> PolicySettings:
    """``current`` with ``changes`` applied, validated as a whole; PolicyInputError says what is wrong."""
    unknown = set(changes) - set(SETTING_FIELDS)
    if unknown:
        raise PolicyInputError(f"unknown policy field(s): {', '.join(sorted(unknown))}")
    merged = {**current.model_dump(), **changes}
    try:
        return PolicySettings.model_validate(merged)
    except ValidationError as exc:
        raise PolicyInputError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = str(error["loc"][0]).replace("_", "-") if error["loc"] else "policy"
        parts.append(f"--{where}: {str(error['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts) + ". Nothing was changed."


# ---------------------------------------------------------------------------- CLI value parsing

_NONE_WORDS = frozenset({"none", "off", "unlimited"})


def parse_dollars(option: str, text: str) -> Decimal | None:
    """'5000', '5,000.50', '$5000' -> Decimal; 'none' -> None."""
    cleaned = text.strip().lower().replace(",", "").removeprefix("$")
    if cleaned in _NONE_WORDS:
        return None
    try:
        value = Decimal(cleaned)
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0 or value > MAX_DOLLARS or value != value.quantize(Decimal("0.01")):
        raise PolicyInputError(
            f"{option} takes a dollar amount above 0 with at most 2 decimals (e.g. 5000 or 2500.50), "
            f"or 'none' for no limit; got {text!r}. Nothing was changed."
        )
    return value.normalize() if value == value.to_integral() else value


def parse_count(option: str, text: str) -> int | None:
    cleaned = text.strip().lower()
    if cleaned in _NONE_WORDS:
        return None
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses.
    if not re.fullmatch(r"[0-9]{1,7}", cleaned) or not 1 <= int(cleaned) <= 1_000_000:
        raise PolicyInputError(
            f"{option} takes a whole number from 1 to 1000000, or 'none' for no limit; got {text!r}. "
            "Nothing was changed."
        )
    return int(cleaned)


def parse_symbols(option: str, text: str, *, any_word: str | None) -> list[str] | None:
    """'AAPL,msft' -> ['AAPL', 'MSFT']; the ``any_word`` ('any' or 'none') means no list."""
    cleaned = text.strip()
    if any_word is not None and cleaned.lower() == any_word:
        return None
    items = [item.strip() for item in cleaned.split(",") if item.strip()]
    if not items:
        raise PolicyInputError(
            f"{option} takes comma-separated symbols (e.g. AAPL,MSFT,BTC/USD)"
            + (f" or '{any_word}'" if any_word else "")
            + f"; got {text!r}. Nothing was changed."
        )
    try:
        return [normalize_symbol(item) for item in items]
    except ValueError as exc:
        raise PolicyInputError(f"{option}: {exc} Nothing was changed.") from None


def parse_choices(option: str, text: str, allowed: tuple[str, ...]) -> list[str]:
    items = [item.strip().lower() for item in text.split(",") if item.strip()]
    wrong = [item for item in items if item not in allowed]
    if not items or wrong:
        raise PolicyInputError(
            f"{option} takes a comma-separated list of {', '.join(allowed)}; got {text!r}. Nothing was changed."
        )
    return items
