"""Keys enter through a one-time page, never through the chat: the MCP side of store/update_credential.

How the person reaches the page depends on what the client can do:

* 2025-11-25 with URL-mode elicitation: ``elicitation/create`` (mode ``url``) asks the client to open
  the page; once the page has stored the keys the server sends ``notifications/elicitation/complete``
  and the tool returns the stored credential.
* 2026-07-28 with URL-mode elicitation: the tool returns ``InputRequiredResult`` carrying the same URL
  elicitation (the SDK's multi-round-trip flow); the client's retry, with the answer, waits for the
  page and returns the stored credential. ``request_state`` names only the link's id, which finds
  nothing for another user.
* Anything else (no URL elicitation, or 2025-11-25 on a stateless HTTP server, which cannot send the
  client a request): the tool returns the link for the agent to hand to the user, and the agent calls
  list_credentials afterwards.

The agent learns that an entry failed and why in general terms only (console/keyentry.AGENT_REASONS).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import (
    CallToolResult,
    ElicitRequest,
    ElicitRequestURLParams,
    ElicitResult,
    InputRequiredResult,
)
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from alpaca_vault.tools import voice
from alpaca_vault.tools.results import respond
from alpaca_vault.tools.runtime import runtime

KEY_ENTRY_INPUT = "key_entry"
_STATE_PREFIX = "key-entry:v1:"
_INPUT_REQUIRED_VERSION = "2026-07-28"


class CredentialSummary(BaseModel):
    """A stored credential's metadata. There is deliberately no field for a key or secret."""

    id: str
    name: str
    provider: str
    environment: Literal["paper", "live"]
    account_number: str | None = None
    account_status: str | None = None
    is_active: bool
    last_validated_at: datetime | None = None
    last_used_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    status: Literal["ok", "damaged"] = Field(
        default="ok",
        description="'damaged': its stored keys can never be opened again; delete it and store the pair again.",
    )

    @classmethod
    def of(cls, info: Any) -> CredentialSummary:
        return cls(
            id=str(info.id),
            name=info.name,
            provider=info.provider,
            environment=info.environment,
            account_number=info.account_number,
            account_status=info.account_status,
            is_active=info.is_active,
            last_validated_at=info.last_validated_at,
            last_used_at=info.last_used_at,
            created_at=info.created_at,
            updated_at=info.updated_at,
            status=getattr(info, "status", "ok"),
        )


class KeyEntryResult(BaseModel):
    status: Literal["stored", "pending"] = Field(
        description="'stored': the keys were entered and stored. 'pending': hand entry_url to the user."
    )
    credential: CredentialSummary | None = Field(default=None, description="Set when status is 'stored'.")
    entry_url: str | None = Field(
        default=None,
        description="One-time page where the user pastes the keys (works once, for this user only). "
        "Give it to the user; never ask for the keys in the chat.",
    )
    expires_at: datetime | None = Field(default=None, description="When entry_url stops working (UTC).")
    validated: bool = Field(default=False, description="True when Alpaca confirmed the key pair.")


def url_elicitation_supported(ctx: Context[Any, Any]) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and elicitation.url is not None


def uses_input_required(ctx: Context[Any, Any]) -> bool:
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, _INPUT_REQUIRED_VERSION)


def _desk(ctx: Context[Any, Any]) -> Any:
    desk = runtime(ctx).parts.desk
    if desk is None:
        raise ToolError(
            "Key entry pages are not available on this server. Add the credential on the server's terminal with "
            "`alpaca-vault credentials add NAME --environment paper`."
        )
    return desk


def _entry_message(name: str, environment: str, replace: bool, minutes: int) -> str:
    what = (
        f"new {environment} keys for credential '{name}'"
        if replace
        else f"the {environment} keys for '{name}'"
    )
    return (
        f"alpaca-vault needs {what}. Open this page and paste your Alpaca API key id and secret there: they go "
        f"straight to the vault, not into this conversation. The link works once and expires in {minutes} minutes."
    )


async def run_key_entry(
    ctx: Context[Any, Any],
    user_id: uuid.UUID,
    *,
    name: str,
    environment: str,
    replace: Any = None,
) -> CallToolResult | InputRequiredResult:
    """Open (or, on a 2026-07-28 retry, finish) a key entry for ``name``; ``replace`` = the credential to re-key."""
    desk = _desk(ctx)
    minutes = int(desk.lifetime.total_seconds() // 60)
    if ctx.request_state is not None and uses_input_required(ctx):
        return await _second_round(ctx, desk, user_id)
    ticket = await desk.open_entry(user_id, name=name, environment=environment, replace=replace)
    message = _entry_message(name, environment, replace is not None, minutes)
    if url_elicitation_supported(ctx) and uses_input_required(ctx):
        return InputRequiredResult(
            input_requests={
                KEY_ENTRY_INPUT: ElicitRequest(params=ElicitRequestURLParams(message=message, url=ticket.url))
            },
            request_state=f"{_STATE_PREFIX}{ticket.link_id}",
        )
    if url_elicitation_supported(ctx) and ctx.session.can_send_request:
        # 2025-11-25 asks mid-call: a stateless HTTP server has no way back to the client, so the link below.
        answer = await ctx.elicit_url(message, ticket.url, ticket.elicitation_id)
        if answer.action != "accept":
            await desk.withdraw(user_id, ticket.link_id)
            raise ToolError(_declined(name))
        outcome = await desk.wait(user_id, ticket.link_id)
        if outcome.status == "stored":
            # Tell the client the out-of-band step is over (2025-11-25 URL mode), then answer the call.
            await ctx.session.send_elicit_complete(ticket.elicitation_id, related_request_id=ctx.request_id)
        return await _finished(ctx, user_id, outcome, name)
    return respond(
        KeyEntryResult(status="pending", entry_url=ticket.url, expires_at=ticket.expires_at),
        f"Ask the user to open this link in their browser and paste the Alpaca {environment} API key id and "
        f"secret there, never in this chat: {ticket.url} (it works once, for this user only, until "
        f"{ticket.expires_at:%H:%M} UTC). Then call list_credentials to check that '{name}' is stored.",
    )


async def _second_round(ctx: Context[Any, Any], desk: Any, user_id: uuid.UUID) -> CallToolResult:
    state = ctx.request_state or ""
    try:
        link_id = uuid.UUID(state.removeprefix(_STATE_PREFIX)) if state.startswith(_STATE_PREFIX) else None
    except ValueError:
        link_id = None
    record = await desk.links.get(user_id, link_id) if link_id is not None else None
    if record is None or record.purpose != "key_entry":
        # Garbage, or another user's entry: the same answer, nothing to probe.
        raise ToolError(
            "This key entry is unknown or belongs to someone else. Call the tool again for a new link."
        )
    name = str(record.details.get("name", record.bound_to))
    answer = (ctx.input_responses or {}).get(KEY_ENTRY_INPUT)
    if not isinstance(answer, ElicitResult) or answer.action != "accept":
        await desk.withdraw(user_id, record.id)
        raise ToolError(_declined(name))
    return await _finished(ctx, user_id, await desk.wait(user_id, record.id), name)


def _declined(name: str) -> str:
    return (
        f"The user did not open the key entry page, so nothing was stored for '{name}'. Call the tool again "
        "when they are ready, or they can run `alpaca-vault credentials add` on the server's terminal."
    )


async def _finished(ctx: Context[Any, Any], user_id: uuid.UUID, outcome: Any, name: str) -> CallToolResult:
    if outcome.status == "stored" and outcome.credential_id is not None:
        info = await runtime(ctx).vault.get(user_id, str(outcome.credential_id))
        credential = CredentialSummary.of(info)
        status = voice.word(info.account_status, voice.ACCOUNT_STATUSES)
        account = f", account {voice.ident(info.account_number)} ({status})" if info.account_number else ""
        return respond(
            KeyEntryResult(status="stored", credential=credential, validated=True),
            f"The user entered the keys on the key entry page: credential '{info.name}' [{info.environment}"
            f"{account}] is stored and validated with Alpaca. Refer to it as credential='{info.name}'.",
        )
    if outcome.status == "expired":
        raise ToolError(
            f"The key entry link for '{name}' expired before the keys were entered. Nothing was stored. "
            "Call the tool again for a new link."
        )
    raise ToolError(
        f"The key entry for '{name}' failed: {outcome.agent_reason}. Nothing was stored. The user saw the details "
        "on the page; call the tool again for a new link when they are ready."
    )
