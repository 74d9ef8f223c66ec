"""The read-only audit tool: what was done in the caller's name (their own events only)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from alpaca_vault.db.audit_actions import AuditAction
from alpaca_vault.tools.gate import vault_call
from alpaca_vault.tools.params import InvalidArgument
from alpaca_vault.tools.results import Bounded, Record, respond
from alpaca_vault.tools.runtime import runtime

MAX_EVENTS = 200


class AuditEventView(BaseModel):
    seq: int = Field(description="Position in your audit chain (1, 2, 3, ... with no gaps).")
    at: datetime
    actor: str = Field(description="Who acted: stdio, cli, console, server, or token:<id>:<name>.")
    action: str
    credential: str | None = None
    tool: str | None = None
    details: dict[str, Any] = Field(
        description="Facts of the action (symbol, side, qty, ids, status); never a key."
    )


class AuditEventsResult(Bounded):
    events: list[AuditEventView]
    next_page_token: str | None = Field(
        default=None, description="Pass as page_token to get older events; null when there are no more."
    )


async def list_audit_events(
    ctx: Context[Any, Any],
    credential: Annotated[
        str | None, Field(max_length=64, description="Only this credential (name or id).")
    ] = None,
    action: Annotated[AuditAction | None, Field(description="Only this action, e.g. order.intent.")] = None,
    since: Annotated[datetime | None, Field(description="Only events at or after this ISO time.")] = None,
    limit: Annotated[
        int, Field(ge=1, le=MAX_EVENTS, description="At most this many events (newest first).")
    ] = 50,
    page_token: Annotated[
        str | None, Field(max_length=20, description="next_page_token of the previous page.")
    ] = None,
) -> Annotated[CallToolResult, AuditEventsResult]:
    """What was done in your name, newest first: every decrypt of a credential, every order intent and its
    outcome (accepted, rejected, unknown, reconciled), cancels, replaces and closes, and the CLI's changes to
    your credentials and tokens. Only your own events. Read-only."""
    before_seq = None
    if page_token is not None:
        if not re.fullmatch(r"[0-9]{1,18}", page_token) or int(page_token) < 1:
            raise InvalidArgument(
                "page_token is not one this tool returned; omit it to start from the newest event."
            )
        before_seq = int(page_token)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # a time without a zone is read as UTC, like every time we show
    async with vault_call(ctx) as call:
        audit = runtime(ctx).parts.audit
        # The caller's own chain only: the filter is the caller's user id (and RLS on PostgreSQL).
        events = call.returned(
            await audit.events(
                call.user_id,
                credential=credential,
                action=action,
                since=since,
                before_seq=before_seq,
                limit=limit + 1,
                by_seq=True,
            )
        )
    more = len(events) > limit
    events = events[:limit]
    views = [
        AuditEventView(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            action=e.action,
            credential=e.credential_name,
            tool=e.tool,
            details=e.details,
        )
        for e in events
    ]
    result = AuditEventsResult(events=views, next_page_token=str(events[-1].seq) if more and events else None)
    if not views:
        summary = "No audit events match."
    else:
        summary = f"{len(views)} audit event(s), newest first (seq {views[0].seq} to {views[-1].seq})."
        if more:
            summary += " More are available: pass next_page_token as page_token."
    return respond(result, summary, records="events", rest=_older_events)


def _older_events(kept: list[Record], omitted: list[Record]) -> str:
    if not kept:
        return "call again with a smaller limit"
    return f"call again with page_token='{kept[-1][1]['seq']}' and the same other arguments"
