"""The gate: every tool call passes through here, and always in the same order.

1. **Caller.** The registry wraps every tool (``guarded``): it resolves the user and the actor
   (stdio, a bearer token, the CLI, the console), opens a :class:`ToolCall` carrying the tool's
   name, its declared :class:`~alpaca_vault.guard.Intent` and its validated non-secret arguments,
   and turns whatever the call raises into a tool error through ``tools/errors.py``.
2. **Resolve the credential** the call names (name or id; none = the only active one).
3. **Intent checks.** Today the live-trading wall: a live credential is refused for any intent that
   changes state at Alpaca unless the operator allows live trading (fail closed).
4. **Before-send hooks**, registered by other rooms when the server is assembled: the trading
   guard's checks, the audit record, the durable order intent. For an order the gate has already
   minted its ``client_order_id`` (when the caller gave none), so a durable intent can hold it.
   Nothing has been unsealed or sent yet.
5. **Unseal** the key pair for exactly one broker exchange.
6. **The broker call**: the tool body's ``await call.send(call.broker.<method>, ...)``, which
   passes the keys and records the answer.
7. **After-call hooks** see the outcome: ``call.outcome`` or ``call.error``.
8. **Shape the result** (the tool body, with ``tools/results.respond``).

A tool body reads::

    async with alpaca_call(ctx, credential, order=request) as call:
        order = await call.send(call.broker.place_order, call.order)
    return respond(OrderResult(credential=call.credential_name, order=order), summary)

and a tool that touches only the vault uses ``vault_call`` (steps 1-4 and 7, no unseal).

Contract for hook authors (register on ``ToolRuntime.hooks`` when the server is assembled, see
``server/app.py``; gate.py itself never changes for a new hook):

* ``hooks.add_before_send(hook, intents=...)``: ``async def hook(call: ToolCall) -> None``. It
  gets the caller (``user_id``, ``actor``), ``tool``, ``intent``, the resolved ``credential``
  (id, name, environment; None for a call that names none, such as ``list_credentials``), the
  validated non-secret ``arguments``, and for orders the broker request ``order`` with its
  ``client_order_id``. Hooks run in registration order. **Raising refuses the call**: nothing is
  unsealed or sent, later hooks do not run, after-call hooks do (with ``call.error`` set). The
  agent reads the text ``tools/errors.py`` has for the exception's class: raise an error of your
  room that carries facts and add its text to that table. An exception without an entry is
  treated as a bug: logged with its (scrubbed) traceback, the agent gets a generic internal error,
  and the call is still refused (fail closed). An ``MCPError`` (such as the SDK's
  ``UrlElicitationRequiredError``) passes through untouched: the SDK answers it as a protocol error.
* ``hooks.add_after_call(hook, intents=...)``: same signature, called once the call is over, with
  ``call.outcome`` (what the broker or vault returned) or ``call.error`` (what was raised). It must
  not raise: the effect has happened and the agent must hear about it, so an exception there is
  logged and the call's result stands.
* ``intents`` limits a hook to those intents (default: every call). A read with no hook for its
  intent resolves and unseals the credential in one read of its row.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar

from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError

from alpaca_vault.broker.client import AlpacaKeys
from alpaca_vault.broker.errors import LiveTradingDisabled
from alpaca_vault.broker.orders import new_client_order_id
from alpaca_vault.guard.intents import Intent
from alpaca_vault.tools.errors import as_tool_error, intent_phrase
from alpaca_vault.tools.results import shaped
from alpaca_vault.tools.runtime import runtime

if TYPE_CHECKING:
    from alpaca_vault.audit.chain import Actor
    from alpaca_vault.broker.client import AlpacaClient
    from alpaca_vault.broker.models import OrderRequest, ReplaceOrderRequest
    from alpaca_vault.vault.credentials import CredentialService

logger = logging.getLogger("alpaca_vault.tools.gate")

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True)
class ResolvedCredential:
    """The credential a call uses, as hooks see it: who it is, never what it holds."""

    id: uuid.UUID
    name: str
    environment: Literal["paper", "live"]

    @classmethod
    def of(cls, info: Any) -> ResolvedCredential:
        return cls(id=info.id, name=info.name, environment=info.environment)


@dataclass(eq=False)
class ToolCall:
    """One tool call on its way through the gate (see the module docstring for the order of steps)."""

    tool: str
    intent: Intent
    user_id: uuid.UUID
    actor: Actor
    #: The validated arguments without the secret ones (a secret never reaches a hook or a record).
    arguments: Mapping[str, Any]
    credential: ResolvedCredential | None = None
    #: For orders: the broker request as it will be sent, ``client_order_id`` included.
    order: OrderRequest | ReplaceOrderRequest | None = None
    client_order_id: str | None = None
    #: The durable order intent once a before-send hook wrote it (the guard, under its lock), so later
    #: hooks (the audit trail's outcome record) settle that one instead of writing a second.
    order_intent: Any = None
    #: What the broker or vault returned (set by the tool body with ``returned``).
    outcome: Any = None
    error: BaseException | None = None
    _keys: AlpacaKeys | None = field(default=None, repr=False)
    _runtime: Any = field(default=None, repr=False)

    @property
    def resolved(self) -> ResolvedCredential:
        """The credential, once resolved (a tool body asks only after ``alpaca_call``/``vault_call``)."""
        if self.credential is None:  # pragma: no cover - wiring error
            raise RuntimeError(f"{self.tool} has no credential")
        return self.credential

    @property
    def credential_name(self) -> str:
        return self.resolved.name

    @property
    def keys(self) -> AlpacaKeys:
        """The unsealed key pair; only inside ``alpaca_call``."""
        if self._keys is None:
            raise RuntimeError(f"{self.tool}: keys used outside alpaca_call")
        return self._keys

    @property
    def broker(self) -> AlpacaClient:
        client: AlpacaClient = self._runtime.broker
        return client

    @property
    def vault(self) -> CredentialService:
        service: CredentialService = self._runtime.vault
        return service

    async def send(
        self, method: Callable[Concatenate[AlpacaKeys, P], Awaitable[R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Step 6: one broker call with the unsealed keys; its answer is recorded as the outcome."""
        return self.returned(await method(self.keys, *args, **kwargs))

    def returned(self, value: T) -> T:
        """Record what the broker (or vault) returned, for the after-call hooks; returns it unchanged."""
        self.outcome = value
        return value


Hook = Callable[[ToolCall], Awaitable[None]]


class GateHooks:
    """The checks and records other rooms plug into every tool call (see the module docstring)."""

    def __init__(self) -> None:
        self._before: list[tuple[Hook, frozenset[Intent] | None]] = []
        self._after: list[tuple[Hook, frozenset[Intent] | None]] = []

    def add_before_send(self, hook: Hook, *, intents: Collection[Intent] | None = None) -> None:
        self._before.append((hook, None if intents is None else frozenset(intents)))

    def add_after_call(self, hook: Hook, *, intents: Collection[Intent] | None = None) -> None:
        self._after.append((hook, None if intents is None else frozenset(intents)))

    def before_send(self, intent: Intent) -> list[Hook]:
        return [hook for hook, only in self._before if only is None or intent in only]

    def after_call(self, intent: Intent) -> list[Hook]:
        return [hook for hook, only in self._after if only is None or intent in only]


_current: contextvars.ContextVar[ToolCall] = contextvars.ContextVar("alpaca_vault_tool_call")


def guarded(
    fn: Callable[P, Awaitable[R]],
    *,
    tool: str,
    intent: Intent,
    context_parameter: str,
    secret_arguments: Collection[str],
) -> Callable[P, Awaitable[R]]:
    """Step 1 of the gate around a tool function; the registry applies it to every row once, at start."""

    @functools.wraps(fn)
    async def gate(*args: P.args, **kwargs: P.kwargs) -> R:
        call: ToolCall | None = None
        try:
            ctx = kwargs[context_parameter]
            rt = runtime(ctx)  # type: ignore[arg-type]
            caller = await rt.caller()
            call = ToolCall(
                tool=tool,
                intent=intent,
                user_id=caller.user_id,
                actor=caller.actor,
                arguments={
                    k: v for k, v in kwargs.items() if k != context_parameter and k not in secret_arguments
                },
                _runtime=rt,
            )
            token = _current.set(call)
            try:
                with shaped(rt.result_shape(_protocol_version(ctx))):
                    return await fn(*args, **kwargs)
            finally:
                _current.reset(token)
        except MCPError:
            raise  # a protocol-level answer (e.g. URL elicitation required) is the SDK's to send
        except Exception as exc:
            raise as_tool_error(exc, call) from None

    return gate


def _protocol_version(ctx: Any) -> str | None:
    """The MCP revision the client speaks (None when there is no session, e.g. a direct call)."""
    try:
        version = ctx.session.protocol_version
    except (AttributeError, LookupError, ValueError, RuntimeError):
        return None
    return version if isinstance(version, str) else None


def current_call() -> ToolCall:
    """The call this tool body runs in (set by ``guarded``)."""
    try:
        return _current.get()
    except LookupError:  # pragma: no cover - wiring error: a tool registered without the registry
        raise RuntimeError("tool called outside the gate; register it through tools/registry.py") from None


@asynccontextmanager
async def alpaca_call(
    ctx: Context[Any, Any],
    credential: str | None,
    *,
    order: OrderRequest | ReplaceOrderRequest | None = None,
) -> AsyncIterator[ToolCall]:
    """Steps 2-7 for a call to Alpaca with a stored credential: yields the call with its ``keys``."""
    call = current_call()
    rt = runtime(ctx)
    before = rt.hooks.before_send(call.intent)
    if order is not None:
        if order.client_order_id is None:
            order = order.model_copy(update={"client_order_id": new_client_order_id()})
        call.order = order
        call.client_order_id = order.client_order_id
    try:
        ref = credential
        resolved = None
        if before or _walled(call.intent, rt.allow_live_trading):
            resolved = await rt.vault.resolve(call.user_id, credential)
            call.credential = ResolvedCredential.of(resolved.info)
            _check_intent(call, rt.allow_live_trading)
            for hook in before:
                await hook(call)
            ref = str(call.credential.id)  # unseal exactly the credential the checks saw
        # The row resolve read is opened again only if something was committed since (the vault checks).
        async with rt.vault.unsealed(call.user_id, ref, resolved=resolved) as unsealed:
            call.credential = ResolvedCredential.of(unsealed.info)
            call._keys = AlpacaKeys(
                api_key=unsealed.api_key,
                secret_key=unsealed.secret_key,
                environment=unsealed.info.environment,
                limiter_key=str(unsealed.info.id),
            )
            try:
                yield call
            finally:
                call._keys = None
    except BaseException as exc:
        call.error = exc
        raise
    finally:
        await _after(call, rt.hooks.after_call(call.intent))


class _NamesNoCredential:
    """``vault_call``'s default: the call acts on no stored credential (storing one, listing them)."""


NO_CREDENTIAL = _NamesNoCredential()


@asynccontextmanager
async def vault_call(
    ctx: Context[Any, Any], *, credential: str | _NamesNoCredential | None = NO_CREDENTIAL
) -> AsyncIterator[ToolCall]:
    """Steps 2-4 and 7 for a call that changes or reads only the vault: nothing is unsealed.

    ``credential`` names an existing credential the call acts on, resolved like any tool's
    (None: the only active one); leave it out when the call acts on none.
    """
    call = current_call()
    rt = runtime(ctx)
    try:
        if not isinstance(credential, _NamesNoCredential):
            call.credential = ResolvedCredential.of(await rt.vault.get(call.user_id, credential))
        for hook in rt.hooks.before_send(call.intent):
            await hook(call)
        yield call
    except BaseException as exc:
        call.error = exc
        raise
    finally:
        await _after(call, rt.hooks.after_call(call.intent))


def _walled(intent: Intent, allow_live_trading: bool) -> bool:
    return intent.changes_alpaca_state and not allow_live_trading


def _check_intent(call: ToolCall, allow_live_trading: bool) -> None:
    """Step 3: the intent's own checks. Today: the live-trading wall (fail closed)."""
    assert call.credential is not None
    if call.credential.environment == "live" and _walled(call.intent, allow_live_trading):
        raise LiveTradingDisabled(intent_phrase(call.intent))


async def _after(call: ToolCall, hooks: list[Hook]) -> None:
    for hook in hooks:
        try:
            await hook(call)
        except Exception:
            logger.exception("after-call hook %r failed for %s", hook, call.tool)
