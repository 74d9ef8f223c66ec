"""A policy change as a person types it (the CLI's options, the console's form): one parser, one set of texts.

``parse_changes`` turns the text of each setting (``5000``, ``none``, ``AAPL,MSFT``, ``any``) into the
values ``PolicyStore.update`` takes, with the same error texts wherever it is typed; ``show_text``
is the reverse (what to pre-fill a form with), ``describe`` the policy as lines a person reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from alpaca_vault.guard.errors import PolicyInputError
from alpaca_vault.guard.policy import (
    ASSET_CLASSES,
    ORDER_TYPES,
    Policy,
    parse_choices,
    parse_count,
    parse_dollars,
    parse_symbols,
)

# The settings typed as text, by field, with the CLI option each error text names.
TEXT_OPTIONS: dict[str, str] = {
    "mode": "--mode",
    "max_order_notional": "--max-order-notional",
    "max_daily_notional": "--max-daily-notional",
    "max_orders_per_day": "--max-orders-per-day",
    "max_orders_per_minute": "--max-orders-per-minute",
    "symbols": "--symbols",
    "deny_symbols": "--deny-symbols",
    "asset_classes": "--asset-classes",
    "order_types": "--order-types",
    "confirm_above_notional": "--confirm-above-notional",
    "duplicate_window_seconds": "--duplicate-window",
}
# The yes/no settings (the kill switch has its own commands and buttons).
FLAG_FIELDS = ("allow_short", "allow_extended_hours", "confirm_live")
_DOLLAR_FIELDS = frozenset({"max_order_notional", "max_daily_notional", "confirm_above_notional"})
_COUNT_FIELDS = frozenset({"max_orders_per_day", "max_orders_per_minute"})


def parse_changes(texts: Mapping[str, str | None], flags: Mapping[str, bool | None]) -> dict[str, Any]:
    """The changes in ``texts`` (field -> typed text; None: unchanged) and ``flags``; PolicyInputError if bad."""
    changes: dict[str, Any] = {}
    for field, text in texts.items():
        if text is None:
            continue
        option = TEXT_OPTIONS.get(field)
        if option is None:
            raise PolicyInputError(f"unknown policy field: {field[:64]}. Nothing was changed.")
        changes[field] = _parse_one(field, option, text)
    for field, flag in flags.items():
        if field not in FLAG_FIELDS:
            raise PolicyInputError(f"unknown policy field: {field[:64]}. Nothing was changed.")
        if flag is not None:
            changes[field] = flag
    return changes


def _parse_one(field: str, option: str, text: str) -> Any:
    if field == "mode":
        if text not in ("read_only", "trade"):
            raise PolicyInputError(f"--mode takes read_only or trade; got {text!r}. Nothing was changed.")
        return text
    if field in _DOLLAR_FIELDS:
        return parse_dollars(option, text)
    if field in _COUNT_FIELDS:
        return parse_count(option, text)
    if field == "symbols":
        return parse_symbols(option, text, any_word="any")
    if field == "deny_symbols":
        return parse_symbols(option, text, any_word="none") or []
    if field == "asset_classes":
        return parse_choices(option, text, ASSET_CLASSES)
    if field == "order_types":
        return parse_choices(option, text, ORDER_TYPES)
    seconds = text.strip()
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses (a traceback, not an answer).
    if not re.fullmatch(r"[0-9]{1,6}", seconds) or int(seconds) > 86_400:
        raise PolicyInputError(
            f"--duplicate-window takes whole seconds from 0 to 86400 (0 turns it off); got {text!r}. "
            "Nothing was changed."
        )
    return int(seconds)


def show_text(policy: Policy) -> dict[str, str]:
    """Each text setting as ``parse_changes`` reads it back (what a form is pre-filled with)."""

    def amount(value: Any) -> str:
        return "none" if value is None else str(value)

    return {
        "mode": policy.mode,
        "max_order_notional": amount(policy.max_order_notional),
        "max_daily_notional": amount(policy.max_daily_notional),
        "max_orders_per_day": amount(policy.max_orders_per_day),
        "max_orders_per_minute": amount(policy.max_orders_per_minute),
        "symbols": "any" if policy.symbols is None else ",".join(policy.symbols),
        "deny_symbols": ",".join(policy.deny_symbols) or "none",
        "asset_classes": ",".join(policy.asset_classes),
        "order_types": ",".join(policy.order_types),
        "confirm_above_notional": amount(policy.confirm_above_notional),
        "duplicate_window_seconds": str(policy.duplicate_window_seconds),
    }


def _money(value: Any) -> str:
    return "no limit" if value is None else f"${value:,}"


def _count(value: Any) -> str:
    return "no limit" if value is None else str(value)


def describe(policy: Policy) -> list[tuple[str, str]]:
    """The policy as (field, value) lines a person reads (`policy show`, the console)."""
    return [
        ("mode", policy.mode + ("  (HALTED: new orders and replaces refused)" if policy.halted else "")),
        ("max order notional", _money(policy.max_order_notional)),
        ("max daily notional", _money(policy.max_daily_notional) + "  (day in America/New_York)"),
        ("max orders per day", _count(policy.max_orders_per_day)),
        ("max orders per minute", _count(policy.max_orders_per_minute)),
        ("symbols", "any" if policy.symbols is None else ", ".join(policy.symbols)),
        ("deny symbols", ", ".join(policy.deny_symbols) or "none"),
        ("asset classes", ", ".join(policy.asset_classes)),
        ("order types", ", ".join(policy.order_types)),
        ("allow short", "yes" if policy.allow_short else "no"),
        ("allow extended hours", "yes" if policy.allow_extended_hours else "no"),
        (
            "confirm above notional",
            "never" if policy.confirm_above_notional is None else f"${policy.confirm_above_notional:,}",
        ),
        ("confirm live", "yes" if policy.confirm_live else "no"),
        (
            "duplicate window",
            "off" if policy.duplicate_window_seconds == 0 else f"{policy.duplicate_window_seconds} s",
        ),
        ("halted", "yes" if policy.halted else "no"),
    ]
