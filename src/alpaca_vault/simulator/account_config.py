"""Account configurations (``/v2/account/configurations``): the fields Alpaca lets a user change.

Effects in the simulator: ``suspend_trade`` refuses new orders, ``fractional_trading: false``
refuses fractional and notional stock orders, ``max_options_trading_level`` bounds option orders
(see :mod:`.option_intake`); ``no_shorting`` stays what a cash account is, long only.
"""

from __future__ import annotations

from typing import Any

from alpaca_vault.simulator.errors import invalid

DEFAULTS: dict[str, Any] = {
    "dtbp_check": "entry",
    "trade_confirm_email": "all",
    "suspend_trade": False,
    "no_shorting": True,
    "fractional_trading": True,
    "max_margin_multiplier": "1",
    "max_options_trading_level": 3,
    "pdt_check": "entry",
    "ptp_no_exception_entry": False,
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "dtbp_check": ("both", "entry", "exit"),
    "pdt_check": ("both", "entry", "exit"),
    "trade_confirm_email": ("all", "none"),
    "max_margin_multiplier": ("1", "2", "4"),
}
_FLAGS = ("suspend_trade", "no_shorting", "fractional_trading", "ptp_no_exception_entry")


def configurations(stored: dict[str, Any]) -> dict[str, Any]:
    return {**DEFAULTS, **stored}


def validate_update(body: dict[str, Any]) -> dict[str, Any]:
    """The changes a PATCH asks for (null means unchanged); a clear 422 for anything else."""
    unknown = set(body) - set(DEFAULTS)
    if unknown:
        raise invalid(
            f"unknown account configuration: {', '.join(sorted(unknown))}; allowed: {', '.join(DEFAULTS)}"
        )
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if value is None:
            continue
        if name in _FLAGS:
            if not isinstance(value, bool):
                raise invalid(f"{name} must be true or false")
        elif name == "max_options_trading_level":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
                raise invalid("max_options_trading_level must be 0, 1, 2 or 3")
        else:
            value = str(value)
            if value not in _CHOICES[name]:
                raise invalid(f"{name} must be one of {', '.join(_CHOICES[name])}")
        changes[name] = value
    if changes.get("no_shorting") is False:
        raise invalid("no_shorting cannot be turned off: simulator accounts are cash accounts (long only)")
    return changes
