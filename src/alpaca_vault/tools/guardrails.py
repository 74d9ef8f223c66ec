"""Guardrail tools: read a credential's trading policy, and preview an order against it.

Neither changes anything: no tool can change a policy (only its owner, on the command line), and
the preview runs the same checks as the guard without recording or sending anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from alpaca_vault.broker.models import Money
from alpaca_vault.guard.orders import NormalisedOrder, dollars
from alpaca_vault.guard.policy import Policy
from alpaca_vault.tools.gate import alpaca_call, vault_call
from alpaca_vault.tools.params import CredentialRef, same_arguments_as
from alpaca_vault.tools.results import respond
from alpaca_vault.tools.runtime import runtime
from alpaca_vault.tools.trading import alpaca_place_order, order_request

if TYPE_CHECKING:  # the guard's service and store load the database layer: not needed to list the tools
    from alpaca_vault.guard.service import Guard


class PolicyResult(BaseModel):
    credential: str
    environment: Literal["paper", "live"]
    policy: Policy = Field(
        description="The policy in force; change it with `alpaca-vault policy set` (owner only)."
    )


class PolicyCheck(BaseModel):
    rule: str
    passed: bool
    message: str
    limit: str | None = None
    value: str | None = None


class PreviewLeg(BaseModel):
    symbol: str
    side: str
    ratio_qty: int
    position_intent: str | None = None


class PreviewOrder(BaseModel):
    symbol: str | None = Field(description="The symbol; null for a multi-leg order (see legs).")
    side: str | None = Field(description="buy or sell; null for a multi-leg order (each leg has one).")
    type: str
    time_in_force: str
    qty: Money | None = None
    notional: Money | None = None
    limit_price: Money | None = None
    stop_price: Money | None = None
    trail_price: Money | None = None
    trail_percent: Money | None = None
    extended_hours: bool
    order_class: str
    asset_class: str
    legs: list[PreviewLeg] | None = Field(default=None, description="A multi-leg order's legs.")


class PreviewResult(BaseModel):
    credential: str
    environment: Literal["paper", "live"]
    order: PreviewOrder = Field(description="The order as it would be sent (after the same checks as place).")
    estimated_notional: Money | None = Field(
        description="Estimated dollar value; null when it cannot be told."
    )
    price_source: str = Field(
        description="Where the estimate's price came from (quote ask/bid, limit price, ...)."
    )
    buying_power_before: Money | None = None
    buying_power_after: Money | None = Field(
        default=None, description="Approximate: buying power before, less a buy's estimate (plus a sale's)."
    )
    checks: list[PolicyCheck]
    allowed: bool = Field(description="True when every check passes (placing it may still need a person).")
    confirmation_required: bool
    confirmation_reasons: list[str]


def _guard(ctx: Context[Any, Any]) -> Guard:
    guard = runtime(ctx).guard
    if guard is None:  # pragma: no cover - wiring error
        raise RuntimeError("the trading guard is not installed")
    return guard


async def get_trading_policy(
    ctx: Context[Any, Any], credential: CredentialRef = None
) -> Annotated[CallToolResult, PolicyResult]:
    """Read the trading policy of a credential: mode, limits, allowed symbols, confirmation, kill switch.

    Read-only: only the credential's owner changes a policy, with `alpaca-vault policy set` on their
    terminal. alpaca_preview_order shows how an order would fare against it.
    """
    async with vault_call(ctx, credential=credential) as call:
        cred = call.resolved
        policy = call.returned(await _guard(ctx).policies.show(call.user_id, str(cred.id)))
    rules = []
    if policy.halted:
        rules.append("HALTED (new orders and replaces refused; cancels and closes work)")
    rules.append(f"mode {policy.mode}")
    for label, value in (
        ("max per order", policy.max_order_notional),
        ("max per day", policy.max_daily_notional),
        ("confirm above", policy.confirm_above_notional),
    ):
        if value is not None:
            rules.append(f"{label} {dollars(value)}")
    if policy.max_orders_per_day is not None:
        rules.append(f"{policy.max_orders_per_day} orders/day")
    if policy.max_orders_per_minute is not None:
        rules.append(f"{policy.max_orders_per_minute} orders/minute")
    if policy.symbols is not None:
        rules.append("symbols " + ",".join(policy.symbols))
    if policy.deny_symbols:
        rules.append("denied " + ",".join(policy.deny_symbols))
    if not policy.allow_short:
        rules.append("no short sales")
    if policy.environment == "live" and policy.confirm_live:
        rules.append("a person confirms every change")
    summary = f"Trading policy of '{cred.name}' ({cred.environment}): " + "; ".join(rules) + "."
    return respond(PolicyResult(credential=cred.name, environment=cred.environment, policy=policy), summary)


@same_arguments_as(alpaca_place_order)
async def alpaca_preview_order(
    ctx: Context[Any, Any], credential: CredentialRef = None, **order_arguments: Any
) -> Annotated[CallToolResult, PreviewResult]:
    """Preview an order without placing it: the same arguments as alpaca_place_order, no side effects.

    Returns the normalised order, its estimated dollar value and where the price came from, buying
    power before and after, every policy check with pass or fail, whether a person will be asked to
    confirm (and why), and the environment. Nothing is sent to Alpaca but reads (quote, account, position).
    """
    request = order_request(**order_arguments)
    order = NormalisedOrder.from_request(request)
    from alpaca_vault.guard.store import CredentialRef as GuardedCredential  # with the runtime, not at start

    async with alpaca_call(ctx, credential) as call:
        cred = call.resolved
        evaluation = await _guard(ctx).evaluate(
            call.user_id,
            GuardedCredential(cred.id, cred.name, cred.environment),
            "place",
            order,
            keys=call.keys,
            want_account=True,
        )
        call.returned(evaluation.report)
    estimate = evaluation.estimate
    amount = estimate.amount if estimate is not None else None
    before = evaluation.facts.buying_power
    after = None
    if before is not None and amount is not None:
        # A buy (or a spread's net debit) spends buying power; a sale (or a net credit) brings some in.
        spends = estimate is not None and not estimate.credit if order.legs else order.side == "buy"
        after = before - amount if spends else before + amount
    report = evaluation.report
    result = PreviewResult(
        credential=cred.name,
        environment=cred.environment,
        order=PreviewOrder(**{k: v for k, v in order.as_json().items() if k in PreviewOrder.model_fields}),
        estimated_notional=amount,
        price_source=estimate.source
        if estimate is not None
        else "not estimated (the call is refused before)",
        buying_power_before=before,
        buying_power_after=after,
        checks=[
            PolicyCheck(rule=c.rule, passed=c.passed, message=c.message, limit=c.limit, value=c.value)
            for c in report.checks
        ],
        allowed=report.allowed,
        confirmation_required=report.needs_confirmation,
        confirmation_reasons=report.confirmation_reasons,
    )
    value = (
        f"about {dollars(amount)} ({estimate.source})" if estimate and amount is not None else "value unknown"
    )
    if not report.allowed:
        verdict = "would be REFUSED: " + " ".join(c.message for c in report.refusals)
    elif report.needs_confirmation:
        verdict = "would need a person's confirmation: " + " ".join(report.confirmation_reasons)
    else:
        verdict = "would pass every check"
    summary = (
        f"Preview on '{cred.name}' ({cred.environment}), nothing placed: {order.describe()} "
        f"{order.time_in_force}, {value}; it {verdict}"
    )
    return respond(result, summary)
