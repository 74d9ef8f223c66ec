"""The audit trail and durable order intents, plugged into the gate when the server is assembled.

Before anything is unsealed or sent (``before_send``), fail closed:

* an order (``Intent.PLACE``) gets its durable intent, with the gate's ``client_order_id`` and
  the request as it will be sent, and its ``order.intent`` event, in one transaction; a replace
  (``Intent.REPLACE``) likewise, with the replaced order's id, and its event is ``order.replace``
  (the trading guard writes both under its lock; this is the fallback without a guard);
* cancel, cancel-all and close get ``order.cancel`` / ``order.cancel_all`` / ``position.close``;
  credential changes get ``credential.<verb>``;
* every call that will decrypt a credential gets ``credential.unseal``.

If any of these cannot be written, ``AuditUnavailable`` refuses the call: nothing is decrypted,
nothing is sent, the agent reads a clear error and the server keeps serving.

After the call (``after_call``) the order's outcome is recorded: accepted (Alpaca's order id and
status), rejected (status and code), or unknown; a failure to record it is logged and left to the
reconciler (the order exists or not regardless, and the agent must hear its result).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from alpaca_vault.audit.chain import Actor
from alpaca_vault.broker.errors import (
    AlpacaConnectionError,
    AlpacaError,
    AlpacaTimeout,
    OrderOutcomeUnknown,
)
from alpaca_vault.guard.intents import Intent
from alpaca_vault.guard.order_intents import OrderIntentInfo

if TYPE_CHECKING:
    from alpaca_vault.audit.chain import KeySource
    from alpaca_vault.audit.log import AuditLog
    from alpaca_vault.broker.client import AlpacaClient
    from alpaca_vault.db.engine import Database
    from alpaca_vault.guard.order_intents import OrderIntents
    from alpaca_vault.guard.reconciler import Reconciler
    from alpaca_vault.tools.gate import GateHooks, ToolCall
    from alpaca_vault.vault.credentials import CredentialService

logger = logging.getLogger("alpaca_vault.audit")

# The event recorded before the call, per intent (PLACE records its durable intent instead).
_ACTION_BEFORE: dict[Intent, str] = {
    Intent.CANCEL: "order.cancel",
    Intent.CANCEL_ALL: "order.cancel_all",
    Intent.CLOSE: "position.close",
    Intent.CLOSE_ALL: "position.close",
    Intent.LOCATE: "locate.request",
    Intent.CREDENTIAL_STORE: "credential.store",
    Intent.CREDENTIAL_UPDATE: "credential.update",
    Intent.CREDENTIAL_DELETE: "credential.delete",
    Intent.CREDENTIAL_VALIDATE: "credential.validate",
}
# Calls that send an order under a client_order_id: a durable intent before, its outcome after.
_ORDER_INTENTS = (Intent.PLACE, Intent.REPLACE)
# Calls of these intents only change the vault's rows (the gate's vault_call): nothing is decrypted.
_VAULT_ONLY = frozenset({Intent.CREDENTIAL_STORE, Intent.CREDENTIAL_UPDATE, Intent.CREDENTIAL_DELETE})
# Arguments worth recording per intent (ids, sizes, symbols): never free text, never a secret.
_ARGUMENT_DETAILS = ("symbol", "order_id", "qty", "percentage", "client_order_id")


def _json_ready(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _notional_estimate(request: dict[str, Any]) -> Decimal | None:
    """Dollars the order may commit, when the request says (notional, or qty at its limit/stop price)."""
    try:
        if request.get("notional") is not None:
            return Decimal(str(request["notional"]))
        price = request.get("limit_price") or request.get("stop_price")
        if request.get("qty") is not None and price is not None:
            return Decimal(str(request["qty"])) * Decimal(str(price))
    except ArithmeticError:
        return None
    return None


class AuditHooks:
    """The audit log, the order-intent store and the reconciler of one server process.

    ``open`` builds them on the server's database and key ring and starts the reconciler (a pass at
    start-up, then every minute); ``install`` registers the gate hooks; ``aclose`` stops the reconciler.
    """

    def __init__(self, log: AuditLog, intents: OrderIntents, reconciler: Reconciler) -> None:
        self.log = log
        self.intents = intents
        self.reconciler = reconciler
        self._open_intents: weakref.WeakKeyDictionary[ToolCall, OrderIntentInfo] = weakref.WeakKeyDictionary()
        self._background: asyncio.Task[None] | None = None
        self._token_names: dict[uuid.UUID, str] = {}  # token id -> name; tokens are never renamed

    @classmethod
    def open(
        cls, database: Database, keyring: KeySource, vault: CredentialService, broker: AlpacaClient
    ) -> AuditHooks:
        from alpaca_vault.audit.chain import ChainKeys
        from alpaca_vault.audit.log import AuditLog
        from alpaca_vault.guard.order_intents import OrderIntents
        from alpaca_vault.guard.reconciler import Reconciler

        log = AuditLog(database, ChainKeys.from_keyring(keyring))
        intents = OrderIntents(database, log)
        hooks = cls(log, intents, Reconciler(intents, vault, broker))
        # Now, not when the task first runs: an order of this process may be recorded before that.
        started = datetime.now(UTC)
        hooks._background = asyncio.create_task(
            hooks.reconciler.run_forever(started=started), name="order-reconciler"
        )
        return hooks

    async def aclose(self) -> None:
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(BaseException):
                await self._background
        self.log.close()

    def install(self, hooks: GateHooks) -> None:
        hooks.add_before_send(self.before_send)
        hooks.add_after_call(self.after_call, intents=_ORDER_INTENTS)

    def _log(self) -> tuple[AuditLog, OrderIntents]:
        return self.log, self.intents

    async def _named(self, call: ToolCall) -> None:
        """Complete a bearer token's actor with the token's name (looked up once per token)."""
        actor = call.actor
        if actor.kind != "token" or actor.token_id is None or actor.token_name is not None:
            return
        name = self._token_names.get(actor.token_id)
        if name is None:
            from sqlalchemy import select

            from alpaca_vault.db.models import ApiToken

            async with self.log.db.session(call.user_id, readonly=True) as session:
                name = await session.scalar(
                    select(ApiToken.name).where(
                        ApiToken.id == actor.token_id, ApiToken.user_id == call.user_id
                    )
                )
            if name is None:
                return
            self._token_names[actor.token_id] = name
        call.actor = Actor("token", actor.token_id, name)

    async def before_send(self, call: ToolCall) -> None:
        audit, intents = self._log()
        await self._named(call)
        credential = call.credential
        credential_id = credential.id if credential is not None else None
        credential_name = credential.name if credential is not None else call.arguments.get("name")
        if call.intent in _ORDER_INTENTS and call.order_intent is not None:
            self._open_intents[call] = call.order_intent  # the guard wrote it under its lock
        elif call.intent in _ORDER_INTENTS and credential is not None and call.order is not None:
            request = _json_ready(call.order.to_alpaca(str(call.client_order_id)))
            replacing = call.intent is Intent.REPLACE
            if replacing:
                request["replaces"] = str(call.arguments.get("order_id") or "")
            self._open_intents[call] = call.order_intent = await intents.record(
                call.user_id,
                credential.id,
                credential.name,
                str(call.client_order_id),
                request,
                actor=call.actor,
                tool=call.tool,
                # A replace's increase over the old order is the guard's to tell; without it, unknown.
                notional_estimate=None if replacing else _notional_estimate(request),
                action="order.replace" if replacing else "order.intent",
            )
        elif (action := _ACTION_BEFORE.get(call.intent)) is not None:
            details = {k: call.arguments[k] for k in _ARGUMENT_DETAILS if call.arguments.get(k) is not None}
            if call.client_order_id is not None:
                details["client_order_id"] = call.client_order_id
            await audit.append(
                call.user_id,
                action,
                call.actor,
                credential_id=credential_id,
                credential_name=credential_name if isinstance(credential_name, str) else None,
                tool=call.tool,
                details=details,
            )
        if credential is not None and call.intent not in _VAULT_ONLY:
            await audit.append(
                call.user_id,
                "credential.unseal",
                call.actor,
                credential_id=credential.id,
                credential_name=credential.name,
                tool=call.tool,
            )

    async def after_call(self, call: ToolCall) -> None:
        intent = self._open_intents.pop(call, None)
        if intent is None:
            return
        _, intents = self._log()
        name = call.credential.name if call.credential is not None else None
        error = call.error
        # A replace's outcome names the order it replaced, so the trail reads without the intent table.
        replaced = intent.request.get("replaces")
        extra = {"replaces": replaced} if replaced else None
        try:
            if error is None and call.outcome is not None:
                await intents.settle(
                    intent,
                    "accepted",
                    actor=call.actor,
                    credential_name=name,
                    tool=call.tool,
                    alpaca_order_id=str(getattr(call.outcome, "id", "")) or None,
                    alpaca_status=getattr(call.outcome, "status", None),
                    details=extra,
                )
            elif _outcome_unknown(error):
                await intents.settle(
                    intent, "unknown", actor=call.actor, credential_name=name, tool=call.tool, details=extra
                )
            else:
                await intents.settle(
                    intent,
                    "rejected",
                    actor=call.actor,
                    credential_name=name,
                    tool=call.tool,
                    error=_error_facts(error),
                    details=extra,
                )
        except Exception as exc:  # the reconciler settles it later; the agent still hears the result
            logger.error("order outcome for %s could not be recorded: %s", intent.client_order_id, exc)


def _outcome_unknown(error: BaseException | None) -> bool:
    if error is None or isinstance(error, OrderOutcomeUnknown):
        return True  # no answer at all is as unknown as a lost one
    return isinstance(error, AlpacaTimeout | AlpacaConnectionError) and error.request_sent


def _error_facts(error: BaseException | None) -> dict[str, Any]:
    if isinstance(error, AlpacaError):
        return {"status": error.status, "code": error.code, "message": error.message[:500]}
    # Refused before anything was sent (guard, vault, audit): the order never left.
    return {"status": None, "code": "not_sent", "message": type(error).__name__}
