"""The checks: plain functions over (policy, order, estimate, position, counters) -> pass/fail per rule.

Nothing here does I/O, so the same checks serve the preview (no side effects)
and the hook (inside the per-credential transaction). A refusal names the
rule, the limit, the value and the way forward; a confirmation reason says why
a human is asked.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from alpaca_vault.guard.orders import (
    NormalisedLeg,
    NormalisedOrder,
    NotionalEstimate,
    dollars,
    round_up_nicely,
    underlying_of,
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
    leg_positions: Mapping[str, Decimal] | None = None,
    replaced_notional: Decimal | None = None,
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
                      position_qty, counters or Counters(), leg_positions)  # fmt: skip
    elif action == "replace" and order is not None:
        _replace_checks(policy, report, order, estimate or NotionalEstimate(None, None, "not estimated"),
                        counters or Counters(), replaced_notional)  # fmt: skip
    return report


def _order_checks(
    policy: Policy,
    report: CheckReport,
    order: NormalisedOrder,
    estimate: NotionalEstimate,
    position_qty: Decimal | None,
    counters: Counters,
    leg_positions: Mapping[str, Decimal] | None = None,
) -> None:
    name = f"'{policy.credential}'"
    add = report.checks.append
    _symbol_checks(policy, report, order.symbols)

    if order.asset_class not in policy.asset_classes:
        wanted = ",".join([*policy.asset_classes, order.asset_class])
        add(
            CheckResult(
                "asset_classes",
                False,
                f"{_what(order)} is {order.asset_class}, which {name} may not trade (allowed: "
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

    if order.legs:
        _spread_short_check(policy, report, order, leg_positions)
    else:
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


def _what(order: NormalisedOrder) -> str:
    return "This option spread" if order.legs else order.symbol


def listed(symbol: str, symbols: list[str]) -> str | None:
    """The entry of ``symbols`` that names ``symbol``: itself, or for an option contract its underlying."""
    if symbol in symbols:
        return symbol
    root = underlying_of(symbol)
    return root if root is not None and root in symbols else None


def _symbol_checks(policy: Policy, report: CheckReport, symbols: list[str]) -> None:
    """The allow-list and the deny list, for every symbol the order trades (each leg of a spread).

    An option contract is allowed when it or its underlying is listed, and denied when it or its
    underlying is denied (denying TSLA denies TSLA's options too)."""
    name = f"'{policy.credential}'"
    add = report.checks.append
    allowed = policy.symbols
    outside = [s for s in symbols if allowed is not None and listed(s, allowed) is None]
    if allowed is not None and outside:
        wanted = ",".join([*allowed, *outside])
        which = ", ".join(outside)
        leg = " (a leg of this spread)" if len(symbols) > 1 else ""
        add(
            CheckResult(
                "symbols",
                False,
                f"{which}{leg} is not among the symbols {name} may trade ({', '.join(allowed)}). Trade one of "
                f"those; or ask the owner to add it: {_policy_set(policy, '--symbols ' + shlex.quote(wanted))}.",
                limit=", ".join(allowed),
                value=which,
            )
        )
    else:
        add(CheckResult("symbols", True, f"{', '.join(symbols)}: allowed."))

    denied = {s: entry for s in symbols if (entry := listed(s, policy.deny_symbols)) is not None}
    if denied:
        entries = set(denied.values())
        rest = ",".join(s for s in policy.deny_symbols if s not in entries) or "none"
        which = ", ".join(denied)
        via = "; ".join(f"{s} by {e}" for s, e in denied.items() if s != e)
        leg = " (a leg of this spread)" if len(symbols) > 1 else ""
        add(
            CheckResult(
                "deny_symbols",
                False,
                f"{which}{leg} is on the deny list of {name}{f' ({via})' if via else ''}, so it cannot be traded "
                f"with this credential; only its owner can lift that: "
                f"{_policy_set(policy, '--deny-symbols ' + shlex.quote(rest))}.",
                limit=", ".join(policy.deny_symbols),
                value=which,
            )
        )
    else:
        add(CheckResult("deny_symbols", True, f"{', '.join(symbols)}: not denied."))


def uncovered_short_legs(
    order: NormalisedOrder, positions: Mapping[str, Decimal]
) -> list[tuple[str, Decimal]]:
    """The sell legs that would open a short option position, with the contracts left uncovered.

    A sell leg is covered by contracts of the same symbol already held (a sell to close), then by the
    order's own buy legs on the same underlying, of the same type (call/put), expiring on or after it:
    such a long leg caps the short leg's loss (a vertical or calendar spread). Whatever is left is a
    naked short option. Each long contract covers one short contract once.
    """
    assert order.qty is not None
    spare: dict[NormalisedLeg, Decimal] = {
        leg: order.qty * leg.ratio_qty for leg in order.legs if leg.side == "buy"
    }
    uncovered: list[tuple[str, Decimal]] = []
    for leg in order.legs:
        if leg.side != "sell":
            continue
        held = positions.get(leg.symbol, Decimal(0))
        need = order.qty * leg.ratio_qty - max(held, Decimal(0))
        # Longest-dated cover last: a same-expiry long covers first, leaving later ones for others.
        for long in sorted(spare, key=lambda lg: lg.expiry):
            if need <= 0:
                break
            if long.underlying == leg.underlying and long.right == leg.right and long.expiry >= leg.expiry:
                used = min(need, spare[long])
                spare[long] -= used
                need -= used
        if need > 0:
            uncovered.append((leg.symbol, need))
    return uncovered


def _spread_short_check(
    policy: Policy, report: CheckReport, order: NormalisedOrder, positions: Mapping[str, Decimal] | None
) -> None:
    name = f"'{policy.credential}'"
    if policy.allow_short or not any(leg.side == "sell" for leg in order.legs):
        report.checks.append(CheckResult("allow_short", True, "No sell leg, or short sales are allowed."))
        return
    naked = uncovered_short_legs(order, positions or {})
    if not naked:
        report.checks.append(
            CheckResult(
                "allow_short",
                True,
                "Every sell leg is covered (by contracts held, or by a buy leg of the same type, underlying "
                "and an expiry no earlier).",
            )
        )
        return
    which = ", ".join(f"{format(n.normalize(), 'f')} x {s}" for s, n in naked)
    report.checks.append(
        CheckResult(
            "allow_short",
            False,
            f"This spread would sell {which} uncovered (neither held nor covered by a buy leg of the same type "
            f"and underlying expiring no earlier), opening a short option position, which the policy of {name} "
            f"does not allow. Add a covering buy leg or sell only contracts held; or ask the owner: "
            f"{_policy_set(policy, '--allow-short')}.",
            limit="sell legs covered",
            value=which,
        )
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
    *,
    daily_amount: Decimal | None = None,
    daily_what: str = "this one, about {},",
) -> None:
    """Per-order and daily dollar limits; ``daily_amount`` is what the call adds to the day (default: all of it)."""
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
        added = amount if daily_amount is None else daily_amount
        total = counters.notional_today + added
        if total > limit:
            left = max(limit - counters.notional_today, Decimal(0))
            fit = (
                units_that_fit(left, order, estimate)
                if order.notional is None and daily_amount is None
                else None
            )
            room = f"At most {dollars(left)} more fits today" + (f" ({fit})" if fit else "")
            raise_to = round_up_nicely(total)
            add(
                CheckResult(
                    "max_daily_notional",
                    False,
                    f"Orders on {name} today (America/New_York) come to about {dollars(counters.notional_today)}; "
                    f"{daily_what.format(dollars(added))} would bring the day to {dollars(total)}, above the daily "
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


def _replace_checks(
    policy: Policy,
    report: CheckReport,
    order: NormalisedOrder,
    estimate: NotionalEstimate,
    counters: Counters,
    replaced_notional: Decimal | None,
) -> None:
    """A replace: the new order's notional against the per-order limit and the confirmation threshold;
    what it adds over the order it replaces against the daily limit (a decrease frees nothing: the old
    order may have been counted on another day)."""
    name = f"'{policy.credential}'"
    added: Decimal | None = None
    if estimate.amount is not None:
        added = max(estimate.amount - (replaced_notional or Decimal(0)), Decimal(0))
    _notional_checks(
        policy,
        report,
        order,
        estimate,
        counters,
        daily_amount=added,
        daily_what="this replace adds about {}, which",
    )
    if (
        policy.confirm_above_notional is not None
        and estimate.amount is not None
        and estimate.amount > policy.confirm_above_notional
    ):
        report.ask(
            "confirm_above_notional",
            f"The replaced order's estimated value, about {dollars(estimate.amount)}, is above {name}'s "
            f"confirmation threshold of {dollars(policy.confirm_above_notional)} (confirm_above_notional).",
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
