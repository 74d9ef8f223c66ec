"""Human confirmation through MCP elicitation: the server asks the person, never the agent.

* 2025-06-18 and 2025-11-25: a form-mode ``elicitation/create`` request, sent mid-call.
* 2026-07-28: the SDK's input-required flow. The call ends with an ``InputRequiredResult``
  carrying the same form; the client asks the person and retries the call with the answer and
  our ``request_state`` (sealed by the SDK's request-state boundary, bound to the same tool and
  arguments). The state names the exact order the person was shown, so an answer for another
  order is never taken.
* A client without form elicitation: for an order, a one-time approval page (guard/approval.py;
  opened by URL-mode elicitation where the client can, else its link in the refusal); for anything
  else, a refusal that says a person must confirm.

There is no tool argument by which an agent confirms: the answer comes only from the client's
elicitation, a protocol message, never from ``arguments``.

``confirmation_middleware`` gives the guard's hook (which runs deep inside the gate, without the
MCP context) the request it runs in, and turns a pending question into the call's result.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp_types import (
    CallToolRequestParams,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
)
from mcp_types.version import is_version_at_least

from alpaca_vault.guard.errors import GuardError

logger = logging.getLogger("alpaca_vault.guard.confirm")

INPUT_REQUIRED_VERSION = "2026-07-28"
CONFIRM_KEY = "alpaca_vault_confirm"
_STATE_VERSION = 1

# One boolean, checked by default: accepting the form is the confirmation; unticking it declines.
CONFIRM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "confirm": {
            "type": "boolean",
            "title": "Yes, do this",
            "description": "Leave ticked and accept to go ahead; decline (or untick) to refuse it.",
            "default": True,
        }
    },
}


@dataclass(frozen=True)
class Confirmation:
    """What the person is asked: a plain summary, bound to one exact call."""

    summary: str
    binding: str  # digest of credential, action and the order's content

    @classmethod
    def bound_to(cls, summary: str, *parts: str) -> Confirmation:
        return cls(summary, hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32])


class ConfirmationNeeded(GuardError):
    """A person must confirm, and this client cannot ask one (no form elicitation)."""

    def __init__(self, confirmation: Confirmation, *, credential: str, environment: str) -> None:
        self.confirmation = confirmation
        self.credential = credential
        self.environment = environment
        super().__init__(
            f"A person must confirm this before it is sent, and this MCP client cannot show a confirmation "
            f"form (it did not declare form elicitation). Nothing was sent to Alpaca. Why: "
            f"{confirmation.summary} Use a client that supports elicitation, or ask the owner to change the "
            f"policy of '{credential}' (alpaca-vault policy show {credential})."
        )


class ConfirmationPending(GuardError):
    """2026-07-28: the question went back to the client as an InputRequiredResult (not an error)."""


@dataclass
class _Channel:
    request: ServerRequestContext[Any, Any]
    pending: InputRequiredResult | None = None


_channel: contextvars.ContextVar[_Channel | None] = contextvars.ContextVar(
    "alpaca_vault_confirm", default=None
)


async def confirmation_middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Expose the request to the guard's confirmation; a pending question becomes the result."""
    if ctx.method != "tools/call":
        return await call_next(ctx)
    channel = _Channel(ctx)
    token = _channel.set(channel)
    try:
        result = await call_next(ctx)
    finally:
        _channel.reset(token)
    if channel.pending is not None:
        return channel.pending
    return result


def _form_capable(request: ServerRequestContext[Any, Any]) -> bool:
    capabilities = request.session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    # A bare `elicitation: {}` (before modes existed) means form; url-only does not.
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _accepted(result: ElicitResult) -> bool:
    if result.action != "accept":
        return False
    content = result.content or {}
    return content.get("confirm", True) is not False


async def ask_person(confirmation: Confirmation, *, credential: str, environment: str) -> str:
    """Ask the person; returns "accept", "decline" or "cancel".

    Raises ConfirmationNeeded when this client cannot ask (or no MCP request is in reach), and
    ConfirmationPending when, on 2026-07-28, the question has gone back to the client.
    """
    channel = _channel.get()
    if channel is None:
        raise ConfirmationNeeded(confirmation, credential=credential, environment=environment)
    request = channel.request
    version = request.protocol_version
    if version and is_version_at_least(version, INPUT_REQUIRED_VERSION):
        return _input_required_round(channel, confirmation, credential=credential, environment=environment)
    if not _form_capable(request) or not request.session.can_send_request:
        raise ConfirmationNeeded(confirmation, credential=credential, environment=environment)
    result = await request.session.elicit_form(
        message=confirmation.summary, requested_schema=CONFIRM_SCHEMA, related_request_id=request.request_id
    )
    if _accepted(result):
        return "accept"
    return "cancel" if result.action == "cancel" else "decline"


def _input_required_round(
    channel: _Channel, confirmation: Confirmation, *, credential: str, environment: str
) -> str:
    params = CallToolRequestParams.model_validate(channel.request.params or {})
    state = _decode_state(params.request_state)
    answer = _as_elicit_result((params.input_responses or {}).get(CONFIRM_KEY))
    if state == confirmation.binding and isinstance(answer, ElicitResult):
        if _accepted(answer):
            return "accept"
        return "cancel" if answer.action == "cancel" else "decline"
    if answer is not None:
        # An answer without our state, or for another order's question: ask again, never take it.
        logger.info("Ignoring a confirmation answer that does not belong to this order; asking again")
    if not _form_capable(channel.request):
        raise ConfirmationNeeded(confirmation, credential=credential, environment=environment)
    channel.pending = InputRequiredResult(
        input_requests={
            CONFIRM_KEY: ElicitRequest(
                params=ElicitRequestFormParams(message=confirmation.summary, requested_schema=CONFIRM_SCHEMA)
            )
        },
        request_state=json.dumps({"v": _STATE_VERSION, "confirm": confirmation.binding}),
    )
    raise ConfirmationPending("a person is being asked to confirm")


def _as_elicit_result(answer: Any) -> ElicitResult | None:
    if answer is None or isinstance(answer, ElicitResult):
        return answer
    try:  # the response union may have parsed it as another member first
        return ElicitResult.model_validate(answer.model_dump(mode="json", by_alias=True, exclude_none=True))
    except ValueError:
        return None


def _decode_state(request_state: str | None) -> str | None:
    if not request_state:
        return None
    try:
        state = json.loads(request_state)
    except ValueError:
        return None
    if not isinstance(state, dict) or state.get("v") != _STATE_VERSION:
        return None
    binding = state.get("confirm")
    return binding if isinstance(binding, str) else None


# --- approval links (#14 item 5): URL-mode elicitation for a client without forms ---------------------


def url_elicitation_reachable() -> bool:
    """True when this call's client can be asked to open a page now (2025-11-25 URL mode, a back channel)."""
    channel = _channel.get()
    if channel is None:
        return False
    request = channel.request
    version = request.protocol_version
    if version and is_version_at_least(version, INPUT_REQUIRED_VERSION):
        return False  # 2026-07-28 has no mid-call requests; the link goes into the refusal instead
    capabilities = request.session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and elicitation.url is not None and request.session.can_send_request


async def open_page(message: str, url: str, elicitation_id: str) -> bool:
    """Ask the client to open ``url`` (URL-mode elicitation); True when the person agreed to open it."""
    channel = _channel.get()
    assert channel is not None
    request = channel.request
    result = await request.session.elicit_url(
        message=message, url=url, elicitation_id=elicitation_id, related_request_id=request.request_id
    )
    return result.action == "accept"


async def page_done(elicitation_id: str) -> None:
    """Tell the client the page's step is over (2025-11-25: notifications/elicitation/complete)."""
    channel = _channel.get()
    if channel is not None:
        await channel.request.session.send_elicit_complete(
            elicitation_id, related_request_id=channel.request.request_id
        )
