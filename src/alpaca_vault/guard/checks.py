"""The checks: plain functions over (policy, order, estimate, position, counters) -> pass/fail per rule.

Nothing here does I/O, so the same checks serve the preview (no side effects)
and the hook (inside the per-credential transaction). A refusal names the
rule, the limit, the value and the way forward; a confirmation reason says why
a human is asked.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from alpaca_vault.guard.orders import (
    NormalisedOrder,
    NotionalEstimate,
    dollars,
    round_up_nicely,
    units_that_fit,
)
from alpaca_vault.guard.policy import Policy

# What a state-changing call does: new orders and replaces add risk; cancels and closes reduce it.
Action = Literal["place", "replace", "cancel", "close"]
RISK_REDUCING: frozenset[str] = frozenset({"cancel", "close"})


@dataclass(frozen=True)
class Counters:
    """What this credential already did, counted from the order intents (every replica sees the same)."""

    orders_today: int = 0
    notional_today: Decimal = Decimal(0)
    orders_last_minute: int = 0
    # The client_order_id and age (s) of the same order placed under another id inside the window.
    duplicate_of: str | None = None
    duplicate_age_seconds: int | None = None
    # This very client_order_id already has an intent: a retry, which never creates a second order.
    same_id_exists: bool = False


@dataclass(frozen=True)
class CheckResult:
    rule: str
    passed: bool
    message: str
    limit: str | None = None
    value: str | None = None


@dataclass
class CheckReport:
    credential: str
    environment: str
    checks: list[CheckResult] = field(default_factory=list)
    confirmation_reasons: list[str] = field(default_factory=list)
    # The rule behind each reason (confirm_live, duplicate_window, confirm_above_notional), same order.
    confirmation_rules: list[str] = field(default_factory=list)

    def ask(self, rule: str, reason: str) -> None:
        self.confirmation_rules.append(rule)
        self.confirmation_reasons.append(reason)

    @property
    def refusals(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    @property
    def allowed(self) -> bool:
        return not self.refusals

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.confirmation_reasons)


def _policy_set(policy: Policy, option: str) -> str:
    return f"alpaca-vault policy set {shlex.quote(policy.credential)} {option}"


def check_call(
    policy: Policy,
    action: Action,
    *,
    order: NormalisedOrder | None = None,
    estimate: NotionalEstimate | None = None,
    position_qty: Decimal | None = None,
    counters: Counters | None = None,
) -> CheckReport:
    """Every rule of ``policy`` for one state-changing call; new orders get the full set."""
    report = CheckReport(policy.credential, policy.environment)
    name = f"'{policy.credential}'"
    add = report.checks.append

    if policy.mode == "read_only":
        add(
            CheckResult(
                "mode",
                False,
                f"{name} is read_only: its trading policy refuses every order, replace, cancel and close "
                f"(reading still works). To trade, its owner runs: {_policy_set(policy, '--mode trade')}.",
                limit="read_only",
            )
        )
    else:
        add(CheckResult("mode", True, f"{name} may trade (mode trade)."))

    if action in RISK_REDUCING:
        add(
            CheckResult(
                "halted", True, "Cancels and closes are allowed even while halted (they reduce risk)."
            )
        )
    elif policy.halted:
        add(
            CheckResult(
                "halted",
                False,
                f"{name} is halted (kill switch): new orders and replaces are refused; cancels and closes "
                f"still work. Its owner lifts it with: alpaca-vault policy resume {shlex.quote(policy.credential)}.",
                limit="halted",
            )
        )
    else:
        add(CheckResult("halted", True, f"{name} is not halted."))

    if policy.environment == "live" and policy.confirm_live:
        report.ask(
            "confirm_live",
            f"{name} is a live credential and its policy asks a person to confirm every change (confirm_live).",
        )

    if action == "place" and order is not None:
        _order_checks(policy, report, order, estimate or NotionalEstimate(None, None, "not estimated"),
                      position_qty, counters or Counters())  # fmt: skip
    return report


def _order_checks(
    policy: Policy,
    report: CheckReport,
    order: NormalisedOrder,
    estimate: NotionalEstimate,
    position_qty: Decimal | None,
    counters: Counters,
) -> None:
    name = f"'{policy.credential}'"
    add = report.checks.append
    symbol = order.symbol

    if policy.symbols is not None and symbol not in policy.symbols:
        allowed = ",".join([*policy.symbols, symbol])
        add(
            CheckResult(
                "symbols",
                False,
                f"{symbol} is not among the symbols {name} may trade ({', '.join(policy.symbols)}). Trade one of "
                f"those; or ask the owner to add it: {_policy_set(policy, '--symbols ' + shlex.quote(allowed))}.",
                limit=", ".join(policy.symbols),
                value=symbol,
            )
        )
    else:
        add(CheckResult("symbols", True, f"{symbol} is allowed."))

    if symbol in policy.deny_symbols:
        rest = ",".join(s for s in policy.deny_symbols if s != symbol) or "none"
        add(
            CheckResult(
                "deny_symbols",
                False,
                f"{symbol} is on the deny list of {name}, so it cannot be traded with this credential; only "
                f"its owner can lift that: {_policy_set(policy, '--deny-symbols ' + shlex.quote(rest))}.",
                limit=", ".join(policy.deny_symbols),
                value=symbol,
            )
        )
    else:
        add(CheckResult("deny_symbols", True, f"{symbol} is not denied."))

    if order.asset_class not in policy.asset_classes:
        wanted = ",".join([*policy.asset_classes, order.asset_class])
        add(
            CheckResult(
                "asset_classes",
                False,
                f"{symbol} is {order.asset_class}, which {name} may not trade (allowed: "
                f"{', '.join(policy.asset_classes)}); or ask the owner: "
                f"{_policy_set(policy, '--asset-classes ' + wanted)}.",
                limit=", ".join(policy.asset_classes),
                value=order.asset_class,
            )
        )
    else:
        add(CheckResult("asset_classes", True, f"{order.asset_class} is allowed."))

    if order.type not in policy.order_types:
        wanted = ",".join([*policy.order_types, order.type])
        add(
            CheckResult(
                "order_types",
                False,
                f"{order.type} orders are not allowed on {name} (allowed: {', '.join(policy.order_types)}). "
                f"Use one of those; or ask the owner: {_policy_set(policy, '--order-types ' + wanted)}.",
                limit=", ".join(policy.order_types),
                value=order.type,
            )
        )
    else:
        add(CheckResult("order_types", True, f"{order.type} orders are allowed."))

    if order.extended_hours and not policy.allow_extended_hours:
        add(
            CheckResult(
                "allow_extended_hours",
                False,
                f"Extended-hours orders are not allowed on {name}. Drop extended_hours; or ask the owner: "
                f"{_policy_set(policy, '--allow-extended-hours')}.",
                limit="no extended hours",
                value="extended_hours=true",
            )
        )
    else:
        add(CheckResult("allow_extended_hours", True, "Extended hours: allowed or not asked for."))

    _short_check(policy, report, order, position_qty)
    _notional_checks(policy, report, order, estimate, counters)
    _count_checks(policy, report, counters)

    if (
        policy.duplicate_window_seconds > 0
        and counters.duplicate_of is not None
        and not counters.same_id_exists
    ):
        age = (
            f"{counters.duplicate_age_seconds} s ago"
            if counters.duplicate_age_seconds is not None
            else "just now"
        )
        report.ask(
            "duplicate_window",
            f"The same order ({order.describe()}) was placed {age} under client_order_id "
            f"{counters.duplicate_of}; a repeat within {policy.duplicate_window_seconds} s is most often a retry "
            "without the id. To retry safely, reuse that client_order_id instead.",
        )
    if (
        policy.confirm_above_notional is not None
        and estimate.amount is not None
        and estimate.amount > policy.confirm_above_notional
    ):
        report.ask(
            "confirm_above_notional",
            f"Its estimated value, about {dollars(estimate.amount)}, is above {name}'s confirmation threshold of "
            f"{dollars(policy.confirm_above_notional)} (confirm_above_notional).",
        )


def _short_check(
    policy: Policy, report: CheckReport, order: NormalisedOrder, position_qty: Decimal | None
) -> None:
    name = f"'{policy.credential}'"
    if order.side != "sell" or policy.allow_short:
        report.checks.append(
            CheckResult("allow_short", True, "Not a short sale, or short sales are allowed.")
        )
        return
    held = position_qty if position_qty is not None and position_qty > 0 else Decimal(0)
    if order.qty is not None and order.qty <= held:
        report.checks.append(CheckResult("allow_short", True, f"Selling {order.qty} of {held} held."))
        return
    if order.qty is None and held > 0:
        # A notional sell is sized by Alpaca; with shares held it closes or reduces the position.
        report.checks.append(CheckResult("allow_short", True, f"A dollar-amount sell against {held} held."))
        return
    size = format(order.qty.normalize(), "f") if order.qty is not None else "a dollar amount of"
    held_text = format(held.normalize(), "f")
    report.checks.append(
        CheckResult(
            "allow_short",
            False,
            f"Selling {size} {order.symbol} is more than the {held_text} held on {name}, so it would open a short "
            f"position, which its policy does not allow. Sell at most {held_text}; or ask the owner: "
            f"{_policy_set(policy, '--allow-short')}.",
            limit=f"at most {held_text} (the position)",
            value=size,
        )
    )


def _notional_checks(
    policy: Policy,
    report: CheckReport,
    order: NormalisedOrder,
    estimate: NotionalEstimate,
    counters: Counters,
) -> None:
    name = f"'{policy.credential}'"
    add = report.checks.append
    limited = any(
        v is not None
        for v in (policy.max_order_notional, policy.max_daily_notional, policy.confirm_above_notional)
    )
    if estimate.amount is None:
        if limited:
            add(
                CheckResult(
                    "notional_estimate",
                    False,
                    f"The order's dollar value could not be estimated ({estimate.source}), and {name} has dollar "
                    "limits that must be checked first. Give a limit_price (a limit order) or a notional amount.",
                    value="unknown",
                )
            )
        return
    amount = estimate.amount
    if policy.max_order_notional is not None:
        limit = policy.max_order_notional
        if amount > limit:
            fit = units_that_fit(limit, order, estimate)
            hint = (
                f"At most {fit} fit"
                if fit and order.notional is None
                else f"Lower it to {dollars(limit)} or less"
            )
            raise_to = round_up_nicely(amount)
            add(
                CheckResult(
                    "max_order_notional",
                    False,
                    f"Order notional about {dollars(amount)} exceeds the per-order limit of {dollars(limit)} on "
                    f"{name}. {hint}; or ask the owner to raise it: "
                    f"{_policy_set(policy, f'--max-order-notional {raise_to}')}.",
                    limit=dollars(limit),
                    value=dollars(amount),
                )
            )
        else:
            add(CheckResult("max_order_notional", True, f"About {dollars(amount)}, within {dollars(limit)}."))
    if policy.max_daily_notional is not None and not counters.same_id_exists:
        limit = policy.max_daily_notional
        total = counters.notional_today + amount
        if total > limit:
            left = max(limit - counters.notional_today, Decimal(0))
            fit = units_that_fit(left, order, estimate) if order.notional is None else None
            room = f"At most {dollars(left)} more fits today" + (f" ({fit})" if fit else "")
            raise_to = round_up_nicely(total)
            add(
                CheckResult(
                    "max_daily_notional",
                    False,
                    f"Orders on {name} today (America/New_York) come to about {dollars(counters.notional_today)}; "
                    f"this one, about {dollars(amount)}, would bring the day to {dollars(total)}, above the daily "
                    f"limit of {dollars(limit)}. {room}; or ask the owner to raise it: "
                    f"{_policy_set(policy, f'--max-daily-notional {raise_to}')}.",
                    limit=dollars(limit),
                    value=dollars(total),
                )
            )
        else:
            add(
                CheckResult(
                    "max_daily_notional",
                    True,
                    f"Today about {dollars(total)} with this one, within {dollars(limit)}.",
                )
            )


def _count_checks(policy: Policy, report: CheckReport, counters: Counters) -> None:
    name = f"'{policy.credential}'"
    add = report.checks.append
    if counters.same_id_exists:
        # A retry under the same client_order_id creates no new order: it counts against nothing.
        return
    if policy.max_orders_per_day is not None:
        limit = policy.max_orders_per_day
        if counters.orders_today >= limit:
            add(
                CheckResult(
                    "max_orders_per_day",
                    False,
                    f"{name} has placed {counters.orders_today} orders today (America/New_York), its daily limit "
                    f"of {limit}. Try again after midnight New York time; or ask the owner to raise it: "
                    f"{_policy_set(policy, f'--max-orders-per-day {max(limit * 2, limit + 1)}')}.",
                    limit=str(limit),
                    value=str(counters.orders_today + 1),
                )
            )
        else:
            add(CheckResult("max_orders_per_day", True, f"{counters.orders_today + 1} of {limit} today."))
    if policy.max_orders_per_minute is not None:
        limit = policy.max_orders_per_minute
        if counters.orders_last_minute >= limit:
            add(
                CheckResult(
                    "max_orders_per_minute",
                    False,
                    f"{name} has placed {counters.orders_last_minute} orders in the last minute, its limit of "
                    f"{limit} per minute. Wait up to a minute and try again; or ask the owner to raise it: "
                    f"{_policy_set(policy, f'--max-orders-per-minute {limit * 2}')}.",
                    limit=str(limit),
                    value=str(counters.orders_last_minute + 1),
                )
            )
        else:
            add(
                CheckResult(
                    "max_orders_per_minute",
                    True,
                    f"{counters.orders_last_minute + 1} of {limit} this minute.",
                )
            )
