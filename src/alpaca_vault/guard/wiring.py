"""The guard as the server assembles it: the vault for market reads, the intent store, the audit trail.

``build_guard`` is what ``server/app.py`` registers on the gate's before-send hook point; the
benchmark builds the same object.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from alpaca_vault.broker.client import AlpacaKeys
from alpaca_vault.db.models import OrderIntent
from alpaca_vault.guard.order_intents import order_details
from alpaca_vault.guard.orders import NormalisedOrder, fingerprint_of
from alpaca_vault.guard.service import Guard, GuardedCall

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from alpaca_vault.audit.log import AuditLog
    from alpaca_vault.broker.client import AlpacaClient
    from alpaca_vault.db.engine import Database
    from alpaca_vault.guard.order_intents import OrderIntents
    from alpaca_vault.vault.credentials import CredentialService


def build_guard(
    db: Database,
    broker: AlpacaClient,
    vault: CredentialService,
    audit: AuditLog | None = None,
    *,
    intents: OrderIntents | None = None,
) -> Guard:
    @asynccontextmanager
    async def open_keys(user_id: uuid.UUID, credential_id: uuid.UUID) -> AsyncIterator[AlpacaKeys]:
        # Only for the reads a rule needs (the quote, the position); the gate unseals again to send.
        async with vault.unsealed(user_id, str(credential_id)) as unsealed:
            yield AlpacaKeys(
                api_key=unsealed.api_key,
                secret_key=unsealed.secret_key,
                environment=unsealed.info.environment,
                limiter_key=str(unsealed.info.id),
            )

    async def record_intent(
        session: AsyncConnection, call: GuardedCall, order: NormalisedOrder | None, notional: Decimal | None
    ) -> None:
        """The durable order intent, in the guard's locked transaction (so it counts at once everywhere).

        A replace's intent is the replacement request with the id of the order it replaces; its event
        is ``order.replace``, and its notional is what it adds to the day."""
        assert call.client_order_id is not None and call.credential is not None
        request = call.order.to_alpaca(call.client_order_id)
        action = "order.intent"
        if str(call.intent) == "replace":
            request["replaces"] = str((call.arguments or {}).get("order_id") or "")
            action = "order.replace"
            if order is not None:  # what the replacement order is, for the record and the duplicate tally
                request.setdefault("symbol", order.wire_symbol)
                request.setdefault("side", order.side)
        if intents is not None:
            # The audit trail's store: the intent and its order.intent event; the outcome is settled
            # on the same intent after the call (tools/audit_hooks.py reads call.order_intent).
            call.order_intent = await intents.record_in(
                session,
                call.user_id,
                call.credential.id,
                call.credential.name,
                call.client_order_id,
                request,
                actor=call.actor,
                tool=call.tool,
                notional_estimate=notional,
                details={"environment": call.credential.environment},
                action=action,
            )
            return
        await session.execute(
            insert(OrderIntent),
            [
                {
                    "user_id": call.user_id,
                    "credential_id": call.credential.id,
                    "client_order_id": call.client_order_id,
                    "request": request,
                    "state": "pending",
                    "notional_estimate": notional,
                    "fingerprint": None if request.get("replaces") is not None else fingerprint_of(request),
                }
            ],
        )
        if audit is not None:
            await audit.append(
                call.user_id,
                action,
                call.actor,
                credential_id=call.credential.id,
                credential_name=call.credential.name,
                tool=call.tool,
                details={
                    **order_details(request),
                    "client_order_id": call.client_order_id,
                    "environment": call.credential.environment,
                },
                session=session,
            )

    async def record_refusal(call: GuardedCall, details: dict[str, Any]) -> None:
        if audit is None or call.credential is None:
            return
        await audit.append(
            call.user_id,
            "guard.refused",
            call.actor,
            credential_id=call.credential.id,
            credential_name=call.credential.name,
            tool=call.tool,
            details=details,
        )

    return Guard(
        db,
        broker,
        open_keys,
        record_intent=record_intent,
        record_refusal=record_refusal,
    )
