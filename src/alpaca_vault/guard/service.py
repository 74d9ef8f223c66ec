"""The guard: policy checks, confirmation and the durable intent for every state-changing call.

``Guard.before_send`` is registered on the gate's before-send hook point. For a
new order it runs, in this order:

1. the policy read and the checks that need no market data (mode, kill switch);
2. the market facts the rules need (the latest quote for a market order's notional, the
   position for a sell that must not go short), unsealing the credential for those reads only;
3. the checks against today's counters, then the human confirmation if one is due
   (no lock is held while a person decides);
4. one transaction, serialized per credential (row lock on PostgreSQL, BEGIN IMMEDIATE on
   SQLite): the policy and counters read again, the checks again, and the order intent
   inserted, so two replicas can never together pass a daily limit.

Every refusal is raised as an error carrying its facts (``PolicyRefused``,
``ConfirmationDeclined``, ``ConfirmationNeeded``) after it is written to the audit trail.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from alpaca_vault.broker.errors import AlpacaError, AlpacaNotFound
from alpaca_vault.broker.models import OrderRequest, Quote, ReplaceOrderRequest
from alpaca_vault.db.inline import write_transaction
from alpaca_vault.guard.approval import ApprovalDesk, ApprovalRequired, ask_with_link
from alpaca_vault.guard.checks import (
    Action,
    CheckReport,
    CheckResult,
    Counters,
    check_call,
    uncovered_short_legs,
)
from alpaca_vault.guard.confirm import Confirmation, ConfirmationNeeded, ask_person
from alpaca_vault.guard.counters import (
    client_order_id_taken,
    count_activity,
    count_activity_inline,
    counts_the_day,
)
from alpaca_vault.guard.errors import ConfirmationDeclined, PolicyRefused, Refusal
from alpaca_vault.guard.order_intents import leg_lines
from alpaca_vault.guard.orders import (
    NormalisedOrder,
    NotionalEstimate,
    UnreadableOrder,
    dollars,
    estimate_notional,
    needs_quote,
)
from alpaca_vault.guard.policy import Policy
from alpaca_vault.guard.store import (
    CredentialRef,
    PolicyStore,
    load_policy,
    load_policy_inline,
    lock_credential,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    from alpaca_vault.broker.client import AlpacaClient, AlpacaKeys
    from alpaca_vault.db.engine import Database

logger = logging.getLogger("alpaca_vault.guard")

# How each state-changing intent (guard/intents.py's Intent values) is judged: new risk (place),
# a change to risk (replace), or less risk (cancel, close: allowed while halted).
ACTION_OF_INTENT: dict[str, Action] = {
    "place": "place",
    "replace": "replace",
    "exercise": "replace",
    "configure_account": "replace",
    # A locate reduces no risk (it prepares a short sale and costs a fee): judged like an order's
    # replace, so read_only and a halted credential refuse it.
    "locate": "replace",
    "cancel": "cancel",
    "cancel_all": "cancel",
    "change_watchlist": "cancel",
    "close": "close",
    "close_all": "close",
}
GUARDED_INTENTS = frozenset(ACTION_OF_INTENT)


class GuardedCall(Protocol):
    """What the guard reads from the gate's ToolCall (tools/gate.py), without importing tools/."""

    tool: str
    intent: Any  # guard.intents.Intent (a StrEnum)
    user_id: uuid.UUID
    actor: Any
    credential: Any
    order: Any
    client_order_id: str | None
    order_intent: Any  # set by the guard once it wrote the durable intent
    arguments: Any  # the validated non-secret arguments (a replace's order_id)


@dataclass(frozen=True)
class MarketFacts:
    quote: Quote | None = None
    position_qty: Decimal | None = None
    buying_power: Decimal | None = None
    unavailable: list[str] = field(default_factory=list)
    # A multi-leg order: each leg's latest quote, and the positions held (by symbol).
    leg_quotes: dict[str, Quote] = field(default_factory=dict)
    leg_positions: dict[str, Decimal] | None = None


async def fetch_facts(
    broker: AlpacaClient,
    keys: AlpacaKeys,
    order: NormalisedOrder,
    *,
    quote: bool,
    position: bool,
    account: bool = False,
) -> MarketFacts:
    """The latest quote, the position and the buying power the checks (or the preview) need.

    A multi-leg order: every leg's quote in one request, and every position in one request."""
    if order.legs:
        return await _spread_facts(broker, keys, order, quote=quote, position=position, account=account)
    unavailable: list[str] = []
    latest: Quote | None = None
    held: Decimal | None = None
    power: Decimal | None = None
    if quote:
        try:
            latest = (await broker.get_latest_quote(keys, order.symbol)).get(order.symbol)
        except AlpacaError as exc:
            unavailable.append(f"latest quote ({type(exc).__name__})")
    if position:
        try:
            held = Decimal((await broker.get_position(keys, order.symbol)).qty)
        except AlpacaNotFound:
            held = Decimal(0)
        except AlpacaError as exc:
            unavailable.append(f"position ({type(exc).__name__})")
    if account:
        power = await _buying_power(broker, keys, unavailable)
    return MarketFacts(latest, held, power, unavailable)


async def _buying_power(broker: AlpacaClient, keys: AlpacaKeys, unavailable: list[str]) -> Decimal | None:
    """The account's buying power, or None (and why, in ``unavailable``) when Alpaca does not say."""
    try:
        bp = (await broker.get_account(keys)).buying_power
    except AlpacaError as exc:
        unavailable.append(f"account ({type(exc).__name__})")
        return None
    return Decimal(bp) if bp is not None else None


async def _spread_facts(
    broker: AlpacaClient,
    keys: AlpacaKeys,
    order: NormalisedOrder,
    *,
    quote: bool,
    position: bool,
    account: bool,
) -> MarketFacts:
    unavailable: list[str] = []
    quotes: dict[str, Quote] = {}
    held: dict[str, Decimal] | None = None
    power: Decimal | None = None
    if quote:
        try:
            quotes = await broker.get_latest_quote(keys, order.symbols)
        except AlpacaError as exc:
            unavailable.append(f"latest quotes ({type(exc).__name__})")
    if position:
        try:
            held = {p.symbol: Decimal(p.qty) for p in await broker.get_positions(keys) if p.qty is not None}
        except AlpacaError as exc:
            unavailable.append(f"positions ({type(exc).__name__})")
    if account:
        power = await _buying_power(broker, keys, unavailable)
    return MarketFacts(buying_power=power, unavailable=unavailable, leg_quotes=quotes, leg_positions=held)


def _dollar_rules(policy: Policy) -> bool:
    return any(
        rule is not None
        for rule in (policy.max_order_notional, policy.max_daily_notional, policy.confirm_above_notional)
    )


def _needs_quote(policy: Policy, order: NormalisedOrder) -> bool:
    """A quote only when a dollar rule needs the market order's value (no extra call otherwise)."""
    dollar_rules = (policy.max_order_notional, policy.max_daily_notional, policy.confirm_above_notional)
    return needs_quote(order) and any(rule is not None for rule in dollar_rules)


def _needs_position(policy: Policy, order: NormalisedOrder) -> bool:
    if policy.allow_short:
        return False
    if order.legs:
        # Only a sell leg that the order's own buy legs leave uncovered needs the positions.
        return bool(uncovered_short_legs(order, {}))
    return order.side == "sell"


@dataclass
class Evaluation:
    policy: Policy
    report: CheckReport
    order: NormalisedOrder | None = None
    estimate: NotionalEstimate | None = None
    counters: Counters | None = None
    facts: MarketFacts = field(default_factory=MarketFacts)
    # A replace: the replaced order's estimated notional (None: unknown, or no dollar rule to check).
    replaced_notional: Decimal | None = None

    @property
    def counted_notional(self) -> Decimal | None:
        """What this call adds to the day's notional: the order's estimate; a replace's increase (never < 0)."""
        amount = self.estimate.amount if self.estimate is not None else None
        if amount is None or self.replaced_notional is None:
            return amount
        return max(amount - self.replaced_notional, Decimal(0))


# Hooks another room supplies when the server is assembled (the audit trail; the intent store).
RecordRefusal = Callable[[GuardedCall, dict[str, Any]], Awaitable[None]]
# (session, call, the order when known, the notional it adds to the day)
RecordIntent = Callable[
    ["AsyncConnection", GuardedCall, NormalisedOrder | None, Decimal | None], Awaitable[None]
]
CountActivity = Callable[
    ["AsyncSession", uuid.UUID, uuid.UUID, NormalisedOrder, datetime, int], Awaitable[Counters]
]
OpenKeys = Callable[[uuid.UUID, uuid.UUID], Any]  # (user_id, credential_id) -> async CM yielding AlpacaKeys


def summary_of(call_tool: str, action: Action, credential: CredentialRef, order: NormalisedOrder | None,
               estimate: NotionalEstimate | None, reasons: list[str]) -> str:  # fmt: skip
    """The plain summary a person confirms: who, where, what, how much, and why they are asked."""
    where = f"'{credential.name}' ({credential.environment.upper()} account)"
    if order is not None:
        value = (
            f", about {dollars(estimate.amount)} (from {estimate.source})"
            if estimate is not None and estimate.amount is not None
            else ""
        )
        what = f"{order.describe()} {order.time_in_force}{value}"
    else:
        what = f"{action} via {call_tool}"
    why = " ".join(reasons)
    return f"Confirm on {where}: {what}. Why you are asked: {why}"


class Guard:
    """The trading guard of one server process (state lives in the database, not here)."""

    def __init__(
        self,
        db: Database,
        broker: AlpacaClient,
        open_keys: OpenKeys,
        *,
        record_intent: RecordIntent | None = None,
        record_refusal: RecordRefusal | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = db
        self.policies = PolicyStore(db)
        self._broker = broker
        self._open_keys = open_keys
        self._record_intent = record_intent
        self._record_refusal = record_refusal
        self._now = now
        # #14 item 5: the pages' approval links, for clients without forms (set when the server has pages).
        self.approvals: ApprovalDesk | None = None
        self.last_quote_seconds = 0.0  # for bench/: the quote fetch, reported apart from the guard's own time

    async def _counters(self, session: AsyncSession | AsyncConnection, user_id: uuid.UUID, credential: CredentialRef,
                        order: NormalisedOrder, policy: Policy, window: int | None = None) -> Counters:  # fmt: skip
        return await count_activity(
            session, user_id, credential.id, order, now=self._now(),
            duplicate_window_seconds=policy.duplicate_window_seconds if window is None else window,
            day_totals=counts_the_day(policy),
        )  # fmt: skip

    async def evaluate(
        self,
        user_id: uuid.UUID,
        credential: CredentialRef,
        action: Action,
        order: NormalisedOrder | None,
        *,
        facts: MarketFacts | None = None,
        keys: AlpacaKeys | None = None,
        want_account: bool = False,
    ) -> Evaluation:
        """The checks without side effects (what the preview shows, and steps 1-3 of a call).

        On an SQLite file the reads run inline (no thread hops); otherwise in a read-only session.
        """
        policy = load_policy_inline(self._db, user_id, credential)
        if policy is None:
            async with self._db.session(user_id, readonly=True) as session:
                policy = await load_policy(session, user_id, credential)
        report = check_call(policy, action)
        if order is None or not report.allowed:
            return Evaluation(policy, report, order)
        if facts is None:
            facts = await self._facts(user_id, credential, policy, order, keys, want_account)
        estimate = estimate_notional(order, facts.quote, facts.leg_quotes)
        window = policy.duplicate_window_seconds
        counters = count_activity_inline(
            self._db, user_id, credential.id, order, now=self._now(), duplicate_window_seconds=window,
            day_totals=counts_the_day(policy),
        )  # fmt: skip
        if counters is None:
            async with self._db.session(user_id, readonly=True) as session:
                counters = await self._counters(session, user_id, credential, order, policy)
        report = check_call(
            policy, action, order=order, estimate=estimate, position_qty=facts.position_qty, counters=counters,
            leg_positions=facts.leg_positions,
        )  # fmt: skip
        return Evaluation(policy, report, order, estimate, counters, facts)

    async def evaluate_replace(
        self, user_id: uuid.UUID, credential: CredentialRef, policy: Policy, order_id: str,
        changes: ReplaceOrderRequest, client_order_id: str | None, *, count: bool = True,
    ) -> Evaluation:  # fmt: skip
        """A replace against the dollar rules: the open order is read from Alpaca, the changes applied,
        and both priced the same way (a market-priced order from the latest quote)."""
        if not _dollar_rules(policy):
            return Evaluation(policy, check_call(policy, "replace"))
        unreadable: str | None = None
        old: NormalisedOrder | None = None
        facts = MarketFacts()
        started = time.perf_counter()
        try:
            async with self._open_keys(user_id, credential.id) as keys:
                try:
                    old = NormalisedOrder.from_alpaca(await self._broker.get_order(keys, order_id))
                except AlpacaError as exc:
                    unreadable = type(exc).__name__
                except UnreadableOrder:
                    unreadable = "its answer held values no order has"
                if old is not None and needs_quote(old):
                    facts = await fetch_facts(self._broker, keys, old, quote=True, position=False)
        finally:
            self.last_quote_seconds = time.perf_counter() - started
        if old is None:
            report = check_call(policy, "replace")
            report.checks.append(
                CheckResult(
                    "notional_estimate",
                    False,
                    f"The order to replace ({order_id[:64]}) could not be read from Alpaca ({unreadable}), and "
                    f"'{policy.credential}' has dollar limits that must be checked first. Check the order id "
                    "(it must be an open order of this credential) and try again.",
                    value="unknown",
                )
            )
            return Evaluation(policy, report)
        new = old.replaced_by(changes, client_order_id)
        estimate = estimate_notional(new, facts.quote, facts.leg_quotes)
        before = estimate_notional(old, facts.quote, facts.leg_quotes).amount
        if not count:  # the caller counts under its lock
            return Evaluation(policy, check_call(policy, "replace"), new, estimate, None, facts, before)
        counters = count_activity_inline(
            self._db, user_id, credential.id, new, now=self._now(), duplicate_window_seconds=0
        )
        if counters is None:
            async with self._db.session(user_id, readonly=True) as session:
                counters = await count_activity(
                    session, user_id, credential.id, new, now=self._now(), duplicate_window_seconds=0
                )
        report = check_call(
            policy, "replace", order=new, estimate=estimate, counters=counters, replaced_notional=before
        )
        return Evaluation(policy, report, new, estimate, counters, facts, replaced_notional=before)

    async def _facts(self, user_id: uuid.UUID, credential: CredentialRef, policy: Policy,
                     order: NormalisedOrder, keys: AlpacaKeys | None, want_account: bool) -> MarketFacts:  # fmt: skip
        quote = want_account or _needs_quote(policy, order)
        position = want_account or _needs_position(policy, order)
        if not (quote or position or want_account):
            return MarketFacts()
        started = time.perf_counter()
        try:
            if keys is not None:
                return await fetch_facts(self._broker, keys, order, quote=quote, position=position,
                                         account=want_account)  # fmt: skip
            async with self._open_keys(user_id, credential.id) as opened:
                return await fetch_facts(self._broker, opened, order, quote=quote, position=position,
                                         account=want_account)  # fmt: skip
        finally:
            self.last_quote_seconds = time.perf_counter() - started

    async def before_send(self, call: GuardedCall) -> None:
        """The gate's before-send hook for every state-changing intent (raising refuses the call).

        The common case costs one policy read (inline on SQLite) and one locked transaction that checks
        and writes the intent. Only a call that needs a person takes a second locked pass, after the
        answer (no lock is held while a person decides).
        """
        action = ACTION_OF_INTENT.get(str(call.intent))
        if action is None or call.credential is None:
            return
        credential = CredentialRef(call.credential.id, call.credential.name, call.credential.environment)
        order: NormalisedOrder | None = None
        if action == "place" and isinstance(call.order, OrderRequest):
            order = NormalisedOrder.from_request(call.order, call.client_order_id)
        policy = await self._policy(call.user_id, credential)
        first = Evaluation(policy, check_call(policy, action), order)
        await self._refuse_if_needed(call, first)  # mode and kill switch: before any market read
        # A replace (not an exercise or a configuration change, which share its action) is an order too.
        replacing = str(call.intent) == "replace" and isinstance(call.order, ReplaceOrderRequest)
        if replacing:
            assert isinstance(call.order, ReplaceOrderRequest)
            order_id = str((getattr(call, "arguments", None) or {}).get("order_id") or "")
            first = await self.evaluate_replace(
                call.user_id, credential, policy, order_id, call.order, call.client_order_id, count=False
            )
            await self._refuse_if_needed(call, first)
            order = first.order
        elif order is not None:
            facts = await self._facts(call.user_id, credential, policy, order, None, False)
            first = Evaluation(
                policy,
                first.report,
                order,
                estimate_notional(order, facts.quote, facts.leg_quotes),
                None,
                facts,
            )
        confirmed: set[str] | None = None
        while True:
            decided = await self._decide(
                call, action, credential, order, first, replacing, confirmed or set()
            )
            if decided is None:
                return  # allowed, and the intent (if any) is written
            if not decided.report.allowed or confirmed is not None:
                if decided.report.allowed:  # asked once already, and what was confirmed no longer covers it
                    decided.report.checks.append(_changed_meanwhile(decided.policy))
                await self._refuse_if_needed(call, decided)
            await self._confirm(call, action, credential, decided)
            confirmed = set(decided.report.confirmation_rules)

    async def _policy(self, user_id: uuid.UUID, credential: CredentialRef) -> Policy:
        policy = load_policy_inline(self._db, user_id, credential)
        if policy is None:
            async with self._db.session(user_id, readonly=True) as session:
                policy = await load_policy(session, user_id, credential)
        return policy

    async def _decide(self, call: GuardedCall, action: Action, credential: CredentialRef,
                      order: NormalisedOrder | None, first: Evaluation, replacing: bool,
                      confirmed: set[str]) -> Evaluation | None:  # fmt: skip
        """The decision that counts: under the per-credential lock, the policy and today's counters read
        again, every check run, and the intent written in the same transaction. None: allowed and
        recorded; else the evaluation that refuses, or that asks a person for what is not yet confirmed
        (nothing is written then). Core statements on one connection: the ORM's unit of work costs more
        than these few rows.

        On an SQLite file the transaction runs inline (db/inline.py: the same statements on the calling
        thread, in one step, under the same BEGIN IMMEDIATE), unless the file is busy."""

        async def decide(session: AsyncConnection) -> Evaluation | None:
            return await self._decide_in(
                session, call, action, credential, order, first, replacing, confirmed
            )

        return await write_transaction(self._db, call.user_id, decide)

    async def _decide_in(self, session: AsyncConnection, call: GuardedCall, action: Action,
                         credential: CredentialRef, order: NormalisedOrder | None, first: Evaluation,
                         replacing: bool, confirmed: set[str]) -> Evaluation | None:  # fmt: skip
        """``_decide``'s transaction: its statements run on ``session`` (async, or inline on SQLite)."""
        await lock_credential(session, call.user_id, credential.id)
        policy = await load_policy(session, call.user_id, credential)
        window = 0 if replacing else None
        counters = (
            await self._counters(session, call.user_id, credential, order, policy, window) if order else None
        )
        if counters is None and replacing and call.client_order_id is not None:
            taken = await client_order_id_taken(session, credential.id, call.client_order_id)
            counters = Counters(same_id_exists=taken)
        report = check_call(
            policy,
            action,
            order=order,
            estimate=first.estimate,
            position_qty=first.facts.position_qty,
            counters=counters,
            leg_positions=first.facts.leg_positions,
            replaced_notional=first.replaced_notional,
        )
        if not report.allowed or not set(report.confirmation_rules) <= confirmed:
            return Evaluation(
                policy, report, order, first.estimate, counters, first.facts, first.replaced_notional
            )
        if (
            (order is not None or replacing)
            and self._record_intent is not None
            and not (counters is not None and counters.same_id_exists)  # a retry: its intent exists
        ):
            await self._record_intent(session, call, order, first.counted_notional)
        return None

    async def _refuse_if_needed(self, call: GuardedCall, evaluation: Evaluation) -> None:
        report = evaluation.report
        if report.allowed:
            return
        refusals = [Refusal(c.rule, c.message, c.limit, c.value) for c in report.refusals]
        await self._audit(
            call,
            [r.rule for r in refusals],
            "refused",
            evaluation.order,
            report.environment,
            error=refusals[0].message,
        )
        raise PolicyRefused(refusals, credential=report.credential, environment=report.environment)

    async def _confirm(self, call: GuardedCall, action: Action, credential: CredentialRef,
                       evaluation: Evaluation) -> None:  # fmt: skip
        reasons = evaluation.report.confirmation_reasons
        order = evaluation.order
        summary = summary_of(call.tool, action, credential, order, evaluation.estimate, reasons)
        binding = [str(credential.id), call.tool, action, order.fingerprint() if order else call.tool]
        replaced = (getattr(call, "arguments", None) or {}).get("order_id") if action == "replace" else None
        if replaced:
            summary = summary.replace(": ", f": replace order {str(replaced)[:64]} with ", 1)
            binding.append(str(replaced))  # the person confirmed replacing this order, not another
        confirmation = Confirmation.bound_to(summary, *binding)
        try:
            answer = await self._ask(call, confirmation, credential, order)
        except ConfirmationNeeded as needed:
            outcome = (
                "approval_link_issued" if isinstance(needed, ApprovalRequired) else "confirmation_unavailable"
            )
            await self._audit(call, evaluation.report.confirmation_rules, outcome, order,
                              credential.environment)  # fmt: skip
            raise
        if answer != "accept":
            await self._audit(call, evaluation.report.confirmation_rules, f"confirmation_{answer}", order,
                              credential.environment)  # fmt: skip
            raise ConfirmationDeclined(credential.name, credential.environment, action=answer)

    async def _ask(self, call: GuardedCall, confirmation: Confirmation, credential: CredentialRef,
                   order: NormalisedOrder | None) -> str:  # fmt: skip
        """The client's form; for an order, an approval page when there is no form (guard/approval.py)."""

        async def ask_form() -> str:
            return await ask_person(
                confirmation, credential=credential.name, environment=credential.environment
            )

        if self.approvals is None or order is None or not call.client_order_id:
            return await ask_form()
        return await ask_with_link(self.approvals, call, confirmation, ask_form)

    async def _audit(
        self,
        call: GuardedCall,
        rules: list[str],
        outcome: str,
        order: NormalisedOrder | None,
        environment: str,
        *,
        error: str | None = None,
    ) -> None:
        """A ``guard.refused`` audit event: the rule(s), the outcome, the environment and the order."""
        details: dict[str, Any] = {"policy_rule": rules, "outcome": outcome, "environment": environment}
        if order is not None:
            body = order.as_json()
            details.update({k: v for k, v in body.items() if k in _AUDITED_ORDER_FIELDS and v is not None})
            if order.legs:
                details["legs"] = leg_lines(body["legs"])
        if error is not None:
            details["error"] = error
        if self._record_refusal is None:
            logger.info("Refused %s on '%s': %s", call.tool, getattr(call.credential, "name", "?"), rules)
            return
        await self._record_refusal(call, details)


_AUDITED_ORDER_FIELDS = frozenset(
    {"symbol", "side", "qty", "notional", "type", "time_in_force", "order_class", "limit_price", "stop_price",
     "client_order_id"}
)  # fmt: skip


def _changed_meanwhile(policy: Policy) -> CheckResult:
    return CheckResult(
        "confirmation",
        False,
        f"Something changed on '{policy.credential}' while the person was confirming (another order, or the "
        "policy), and what they confirmed no longer covers it. Nothing was sent; call again to be asked anew.",
    )
