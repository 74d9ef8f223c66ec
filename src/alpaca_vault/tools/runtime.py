"""What every tool call runs against: the vault, the broker client, the gate's hooks, and who is calling.

The server's lifespan builds one ``ToolRuntime`` per process and every tool reaches it through its
``Context``. The vault and broker open in the background, so ``initialize`` and ``tools/list`` never
wait for the database.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from alpaca_vault.tools.results import DEFAULT_MAX_RESULT_BYTES, ResultShape, ResultText, text_carries_data

if TYPE_CHECKING:
    from alpaca_vault.audit.chain import Actor
    from alpaca_vault.audit.log import AuditLog
    from alpaca_vault.broker.client import AlpacaClient
    from alpaca_vault.guard.service import Guard
    from alpaca_vault.tools.gate import GateHooks
    from alpaca_vault.vault.credentials import CredentialService

logger = logging.getLogger("alpaca_vault.tools")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the user the call acts for, and the actor (stdio client, bearer token, ...)."""

    user_id: uuid.UUID
    actor: Actor


@dataclass(frozen=True)
class RuntimeParts:
    """What the server opens once: the vault, the broker client, and who the local (stdio) user is."""

    vault: CredentialService
    broker: AlpacaClient
    local_user_id: uuid.UUID
    #: The audit trail (#13): list_audit_events reads the caller's events from it.
    audit: AuditLog
    #: The trading guard (#14): policies, preview, checks; installed on the gate's hooks by server/app.py.
    guard: Guard | None = None
    # #12: opens one-time key entry pages (console/keyentry.KeyEntryDesk); None when pages are off.
    desk: Any = None


class RuntimeUnavailable(ToolError):
    """The vault could not be opened (bad key file, unreachable database, ...); the message says why."""


class ToolRuntime:
    """Built by the server's lifespan; every tool reaches it through its Context.

    A tool call waits (``ready``) until the vault and broker are open. A failed opening is retried
    by the next call (the opener cleans up after itself) and reported as a tool error meanwhile.
    """

    def __init__(
        self,
        opener: Callable[[], Awaitable[RuntimeParts]],
        *,
        allow_live_trading: bool,
        resolve_caller: Callable[[uuid.UUID], Caller],
        hooks: GateHooks | None = None,
        allow_secrets_in_arguments: bool = False,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        result_text: ResultText = "data",
        order_deadline: float = 25.0,
    ) -> None:
        from alpaca_vault.tools.gate import GateHooks

        self._opener = opener
        self._parts: RuntimeParts | None = None
        self._lock = asyncio.Lock()
        self.allow_live_trading = allow_live_trading
        # #12: store/update_credential take keys as arguments only when the operator allows it.
        self.allow_secrets_in_arguments = allow_secrets_in_arguments
        # #11: every result fits max_result_bytes; result_text decides whether the text repeats the data.
        self.max_result_bytes = max_result_bytes
        self.result_text: ResultText = result_text
        # #10 point 9: seconds alpaca_place_order may take before it answers with the id to look up.
        self.order_deadline = order_deadline
        # Maps the local user to the caller: the bearer token's user over HTTP, the local user over stdio.
        self._resolve_caller = resolve_caller
        #: Checks and records other rooms plug into every tool call (see tools/gate.py).
        self.hooks: GateHooks = hooks if hooks is not None else GateHooks()

    async def ready(self) -> RuntimeParts:
        if self._parts is None:
            async with self._lock:
                if self._parts is None:
                    try:
                        self._parts = await self._opener()
                    except ToolError:
                        raise
                    except Exception as exc:
                        logger.error("The vault could not be opened: %s", exc)
                        raise RuntimeUnavailable(f"The vault could not be opened: {exc}") from None
        return self._parts

    @property
    def parts(self) -> RuntimeParts:
        if self._parts is None:  # pragma: no cover - tools await current_user()/ready() first
            raise RuntimeError("ToolRuntime used before ready()")
        return self._parts

    @property
    def vault(self) -> CredentialService:
        return self.parts.vault

    @property
    def broker(self) -> AlpacaClient:
        return self.parts.broker

    @property
    def guard(self) -> Guard | None:
        return self.parts.guard

    def result_shape(self, protocol_version: str | None) -> ResultShape:
        """How results are shaped for a client speaking ``protocol_version``."""
        return ResultShape(self.max_result_bytes, text_carries_data(self.result_text, protocol_version))

    async def caller(self) -> Caller:
        parts = await self.ready()
        return self._resolve_caller(parts.local_user_id)

    async def resolve_user(self) -> uuid.UUID:
        return (await self.caller()).user_id


def runtime(ctx: Context[Any, Any]) -> ToolRuntime:
    state = ctx.request_context.lifespan_context
    if not isinstance(state, ToolRuntime):  # pragma: no cover - wiring error, not user error
        raise RuntimeError("alpaca-vault tools need the ToolRuntime lifespan")
    return state


async def current_user(ctx: Context[Any, Any]) -> uuid.UUID:
    """The caller's user id; also waits until the vault is open, so call it before touching the vault."""
    return await runtime(ctx).resolve_user()
