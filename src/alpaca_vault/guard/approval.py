"""Approval links: the human confirmation for a client that cannot show a form (#14, item 5).

When an order needs a person's yes and the client has no form elicitation, the guard opens a
one-time approval page (the console room serves it; ``ApprovalDesk`` is its side of the seam) and

* asks the client to open it by URL-mode elicitation when it can (2025-11-25 with a back channel),
  waiting for the person's answer on the page; or
* refuses the call with the link in the text (``ApprovalRequired``), for the agent to hand over.
  The same call again, with the same ``client_order_id``, goes through once the person approved.

An approval is bound to the exact broker request (every field, the ``client_order_id`` included),
the credential and the tool: ``approval_binding``. A declined approval refuses every retry of that
order; an expired or unanswered one is never taken, and the retry gets a fresh link. No argument
of any tool says "approved": the answer exists only as the page's record in the database.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from alpaca_vault.guard.confirm import (
    Confirmation,
    ConfirmationNeeded,
    open_page,
    page_done,
    url_elicitation_reachable,
)

Answer = Literal["approved", "declined", "none"]
Outcome = Literal["approved", "declined", "expired"]


def approval_binding(credential_id: uuid.UUID, tool: str, request: dict[str, Any]) -> str:
    """A digest of the exact order as it would be sent (its client_order_id included) and where."""
    body = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"approval v1\0{credential_id}\0{tool}\0{body}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class ApprovalTicket:
    """An open approval page: its link (a capability: shown once, never logged) and its expiry."""

    link_id: uuid.UUID
    url: str
    expires_at: datetime

    @property
    def elicitation_id(self) -> str:
        return str(self.link_id)

    def __repr__(self) -> str:
        return f"ApprovalTicket(link_id={self.link_id}, expires_at={self.expires_at.isoformat()})"


class ApprovalDesk(Protocol):
    """What the guard needs from the pages (console/approval.py implements it)."""

    async def answer(self, user_id: uuid.UUID, binding: str) -> Answer:
        """The person's answer on a page for exactly this binding: approved (still fresh), declined, or none."""

    async def open(
        self,
        user_id: uuid.UUID,
        *,
        binding: str,
        summary: str,
        credential: str,
        environment: str,
        client_order_id: str,
    ) -> ApprovalTicket: ...

    async def wait(self, user_id: uuid.UUID, link_id: uuid.UUID) -> Outcome: ...

    async def withdraw(self, user_id: uuid.UUID, link_id: uuid.UUID) -> None: ...


class ApprovalRequired(ConfirmationNeeded):
    """A person must approve on the page behind ``url``; the same call with the same id goes through after."""

    def __init__(
        self,
        confirmation: Confirmation,
        ticket: ApprovalTicket,
        *,
        credential: str,
        environment: str,
        client_order_id: str,
    ) -> None:
        super().__init__(confirmation, credential=credential, environment=environment)
        self.url = ticket.url
        self.expires_at = ticket.expires_at
        self.client_order_id = client_order_id
        self.args = (
            f"A person must confirm this before it is sent, and this MCP client cannot show a confirmation "
            f"form. Nothing was sent to Alpaca. Ask the user to open this one-time approval page "
            f"and approve or decline it there: {ticket.url} (it works until {ticket.expires_at:%H:%M} UTC, for "
            f"this exact order only). Once they say they approved it, call the tool again with exactly the same "
            f"arguments and client_order_id '{client_order_id}'; if they declined, do not retry. What they are "
            f"asked: {confirmation.summary}",
        )


_ANSWER_OF_OUTCOME = {"approved": "accept", "declined": "decline", "expired": "cancel"}


async def ask_with_link(
    desk: ApprovalDesk, call: Any, confirmation: Confirmation, ask_form: Callable[[], Awaitable[str]]
) -> str:
    """The person's answer for an order: from an approval page, the client's form, or a page opened now.

    Returns "accept", "decline" or "cancel"; raises ApprovalRequired when the link must go through the
    agent (and ConfirmationPending when, on 2026-07-28, a form question went back to the client).
    """
    credential = call.credential
    client_order_id = str(call.client_order_id)
    request = call.order.to_alpaca(client_order_id)
    replaced = (getattr(call, "arguments", None) or {}).get("order_id")
    if str(call.intent) == "replace" and replaced:
        request["replaces"] = str(replaced)  # approving a replace of one order never covers another's
    binding = approval_binding(credential.id, call.tool, request)
    prior = await desk.answer(call.user_id, binding)
    if prior != "none":
        return "accept" if prior == "approved" else "decline"
    try:
        return await ask_form()
    except ApprovalRequired:
        raise
    except ConfirmationNeeded:
        pass  # no form here: a page instead
    ticket = await desk.open(
        call.user_id,
        binding=binding,
        summary=confirmation.summary,
        credential=credential.name,
        environment=credential.environment,
        client_order_id=client_order_id,
    )
    if not url_elicitation_reachable():
        raise ApprovalRequired(
            confirmation,
            ticket,
            credential=credential.name,
            environment=credential.environment,
            client_order_id=client_order_id,
        )
    message = (
        f"alpaca-vault asks you to approve or decline an order on the page this opens. {confirmation.summary}"
    )
    if not await open_page(message, ticket.url, ticket.elicitation_id):
        await desk.withdraw(call.user_id, ticket.link_id)
        return "decline"
    outcome = await desk.wait(call.user_id, ticket.link_id)
    await page_done(ticket.elicitation_id)
    return _ANSWER_OF_OUTCOME[outcome]
