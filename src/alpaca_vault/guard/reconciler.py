"""The reconciler: settles order intents whose outcome was never recorded, by looking them up.

An intent stays pending or unknown when the process died mid-POST, or Alpaca's
answer was lost and the broker's own look-up failed too. The reconciler asks
Alpaca for the order under the intent's client_order_id; it never resubmits.

* found: state reconciled, with Alpaca's order id and status (event order.reconciled, outcome found);
* Alpaca has no such order and the intent is older than ``not_found_after``: it was never
  placed (state rejected, event order.reconciled, outcome not_placed). Younger intents may
  still be in flight on another replica and are left for the next run;
* the look-up fails (Alpaca down, credential deleted or its keys refused): left open.

It runs at server start, every minute in the background, and on demand
(``alpaca-vault orders reconcile``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from alpaca_vault.audit.chain import SERVER, Actor
from alpaca_vault.audit.log import AuditUnavailable
from alpaca_vault.broker.client import AlpacaKeys
from alpaca_vault.broker.errors import AlpacaError, AlpacaNotFound
from alpaca_vault.guard.order_intents import OPEN_STATES, OrderIntentInfo, OrderIntents, open_intent_ids
from alpaca_vault.vault.errors import VaultError

if TYPE_CHECKING:
    from alpaca_vault.broker.client import AlpacaClient
    from alpaca_vault.vault.credentials import CredentialService

logger = logging.getLogger("alpaca_vault.guard.reconciler")

RECONCILE_INTERVAL_SECONDS = 60.0
# Longer than a POST can take with the broker's retries: an order not found after this was never placed.
NOT_FOUND_AFTER = timedelta(minutes=2)
# The background pass leaves intents this young alone: their POST is most likely still in flight here.
BACKGROUND_MIN_AGE = timedelta(seconds=30)

SettlementOutcome = Literal["found", "not_placed", "still_open", "lookup_failed"]


@dataclass(frozen=True)
class Settlement:
    intent: OrderIntentInfo
    outcome: SettlementOutcome
    alpaca_order_id: str | None = None
    alpaca_status: str | None = None
    note: str | None = None

    def describe(self) -> str:
        coid = self.intent.client_order_id
        if self.outcome == "found":
            return f"{coid}: found at Alpaca as order {self.alpaca_order_id} ({self.alpaca_status}); recorded"
        if self.outcome == "not_placed":
            return f"{coid}: Alpaca has no such order; recorded as never placed"
        if self.outcome == "still_open":
            return f"{coid}: not at Alpaca yet and too recent to call; left open for the next run"
        return f"{coid}: look-up failed ({self.note}); left open"


class Reconciler:
    """Looks open intents up by client_order_id; settles what it can tell, never resubmits."""

    def __init__(
        self,
        intents: OrderIntents,
        vault: CredentialService,
        broker: AlpacaClient,
        *,
        not_found_after: timedelta = NOT_FOUND_AFTER,
    ) -> None:
        self.intents = intents
        self.vault = vault
        self.broker = broker
        self.not_found_after = not_found_after
        self._lock = asyncio.Lock()  # one pass at a time per process

    async def run_once(
        self,
        user_id: uuid.UUID | None = None,
        *,
        actor: Actor = SERVER,
        min_age: timedelta = timedelta(0),
        owner: bool = False,
    ) -> list[Settlement]:
        """One pass over the open intents (of ``user_id``, or of every user) older than ``min_age``."""
        async with self._lock:
            now = datetime.now(UTC)
            if user_id is not None or owner:
                found = await self.intents.list(user_id, states=OPEN_STATES, owner=owner and user_id is None)
                open_ = [i for i in found if i.created_at < now - min_age]
            else:
                open_ = []
                for intent_id, owner_id in await open_intent_ids(self.intents.db, now - min_age):
                    intent = await self.intents.get(owner_id, intent_id)
                    if intent is not None and intent.state in OPEN_STATES:
                        open_.append(intent)
            settlements = []
            for intent in open_:
                settlements.append(await self._settle(intent, actor, now))
            return settlements

    async def _settle(self, intent: OrderIntentInfo, actor: Actor, now: datetime) -> Settlement:
        credential_name: str | None = None
        try:
            info = await self.vault.get(intent.user_id, str(intent.credential_id))
            credential_name = info.name
            # Fail closed like every decrypt: no audit record, no unseal.
            await self.intents.audit.append(
                intent.user_id,
                "credential.unseal",
                actor,
                credential_id=intent.credential_id,
                credential_name=credential_name,
                details={"client_order_id": intent.client_order_id, "outcome": "reconcile"},
            )
            async with self.vault.unsealed(intent.user_id, str(intent.credential_id)) as unsealed:
                keys = AlpacaKeys(
                    api_key=unsealed.api_key,
                    secret_key=unsealed.secret_key,
                    environment=unsealed.info.environment,
                    limiter_key=str(unsealed.info.id),
                )
                try:
                    order = await self.broker.get_order_by_client_id(keys, intent.client_order_id)
                except AlpacaNotFound:
                    order = None
                finally:
                    del keys
        except (AlpacaError, VaultError, AuditUnavailable) as exc:
            note = type(exc).__name__
            logger.warning("reconciling intent %s: look-up failed (%s)", intent.client_order_id, note)
            return Settlement(intent, "lookup_failed", note=note)
        if order is not None:
            await self.intents.settle(
                intent,
                "reconciled",
                actor=actor,
                credential_name=credential_name,
                alpaca_order_id=order.id,
                alpaca_status=order.status,
                details={"outcome": "found"},
            )
            return Settlement(intent, "found", order.id, order.status)
        if now - intent.created_at < self.not_found_after:
            return Settlement(intent, "still_open")
        await self.intents.settle(
            intent,
            "reconciled",
            state="rejected",
            actor=actor,
            credential_name=credential_name,
            error={"status": 404, "code": None, "message": "no order with this client_order_id at Alpaca"},
            details={"outcome": "not_placed"},
        )
        return Settlement(intent, "not_placed")

    async def run_forever(
        self, interval: float = RECONCILE_INTERVAL_SECONDS, *, started: datetime | None = None
    ) -> None:
        """At start-up, then every ``interval`` seconds; a failed pass is logged, never fatal.

        The start-up pass settles what earlier processes left open: the intents made before ``started``
        (default: now). Later ones are this process's own and most likely in flight (the first order can
        open the runtime, and so start this pass, while its POST is waiting for Alpaca's answer).
        """
        started = started or datetime.now(UTC)
        first = True
        while True:
            try:
                since_start = max(datetime.now(UTC) - started, timedelta(0))
                settled = await self.run_once(min_age=since_start if first else BACKGROUND_MIN_AGE)
                for settlement in settled:
                    if settlement.outcome in ("found", "not_placed"):
                        logger.info("reconciled order intent %s", settlement.describe())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server keeps serving; the next pass tries again
                logger.error("order reconciliation pass failed: %s", type(exc).__name__)
            first = False
            await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def reconciling(reconciler: Reconciler, interval: float = RECONCILE_INTERVAL_SECONDS):  # type: ignore[no-untyped-def]
    """Run ``reconciler.run_forever`` for the lifetime of the block."""
    task = asyncio.create_task(reconciler.run_forever(interval), name="order-reconciler")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
