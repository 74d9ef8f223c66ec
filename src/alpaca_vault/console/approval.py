"""Order approval pages (#14 item 5): a person approves or declines one order the guard held back.

``OrderApprovals`` is the guard's ``ApprovalDesk`` (guard/approval.py): it opens ``order_approval``
one-time links (``/connect/approve/<secret>``, served by the HTTP server or, over stdio, by the
loopback listener like the key entry) and reads the answers. A link is bound (``bound_to``) to the
digest of the exact broker request, credential and tool; its page shows the summary the form
confirmation shows, the ``client_order_id`` and the expiry. An approval counts for retries of that
exact order for ``lifetime`` after it was given; a decline refuses every retry of it.

The person's answer is written to the audit trail (``order.approval``, actor ``console``) in the
transaction that uses the link: only the answer that counts is recorded, and if the record cannot be
written the answer is refused (the link stays unused).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.console.keyentry import KeyEntryDesk
from alpaca_vault.console.links import LinkError, LinkRecord, LinkStore
from alpaca_vault.console.security import SESSION_COOKIE, csrf_ok, csrf_token, read_session
from alpaca_vault.db.models import utcnow
from alpaca_vault.guard.approval import Answer, ApprovalTicket, Outcome

APPROVAL_PATH = "/connect/approve/"


class OrderApprovals:
    """Approval links for the guard: open, read the answer, wait for it."""

    def __init__(self, links: LinkStore, desk: KeyEntryDesk, *, lifetime: timedelta) -> None:
        self.links = links
        self._desk = desk
        self.lifetime = lifetime

    async def answer(self, user_id: uuid.UUID, binding: str) -> Answer:
        records = await self.links.answers(user_id, "order_approval", binding)
        if any(r.outcome == "declined" for r in records):
            return "declined"  # once declined, that exact order is never approved by another link
        now = utcnow()
        fresh = [
            r for r in records if r.outcome == "approved" and r.used_at and now < r.used_at + self.lifetime
        ]
        return "approved" if fresh else "none"

    async def open(
        self,
        user_id: uuid.UUID,
        *,
        binding: str,
        summary: str,
        credential: str,
        environment: str,
        client_order_id: str,
    ) -> ApprovalTicket:
        details = {
            "summary": summary,
            "credential": credential,
            "environment": environment,
            "client_order_id": client_order_id,
        }
        issued, url = await self._desk.open_link(
            user_id,
            "order_approval",
            APPROVAL_PATH,
            lifetime=self.lifetime,
            bound_to=binding,
            details=details,
        )
        return ApprovalTicket(issued.id, url, issued.expires_at)

    async def wait(self, user_id: uuid.UUID, link_id: uuid.UUID) -> Outcome:
        record = await self.links.wait(user_id, link_id)
        if record is not None and record.outcome in ("approved", "declined"):
            return "approved" if record.outcome == "approved" else "declined"
        return "expired"

    async def withdraw(self, user_id: uuid.UUID, link_id: uuid.UUID) -> None:
        await self.links.withdraw(user_id, link_id, "withdrawn")


def approval_routes(services: Any) -> list[Route]:
    """The page, for connect_app: GET shows the order, POST records approve or decline."""
    from alpaca_vault.console.app import _link_problem, message, read_form, render

    async def find(request: Request) -> tuple[Any, LinkRecord] | Response:
        s = await services()
        try:
            record = await s.links.find(request.path_params["secret"], "order_approval")
        except LinkError as error:
            return _link_problem(error)
        session = read_session(s.keyring, request.cookies.get(SESSION_COOKIE))
        if session is not None and session.user_id != record.user_id:
            return message(
                403,
                "Another user's order",
                "This approval belongs to another user than the one signed in to the console here. Nothing "
                "was approved. Sign out first, or open the link where its owner is signed in.",
            )
        return s, record

    async def show(request: Request) -> Response:
        found = await find(request)
        if isinstance(found, Response):
            return found
        s, record = found
        return render(
            "approval.html",
            title="Approve an order",
            summary=record.details.get("summary", ""),
            credential=record.details.get("credential", ""),
            environment=record.details.get("environment", ""),
            client_order_id=record.details.get("client_order_id", ""),
            user_name=record.user_name,
            expires=record.expires_at.strftime("%H:%M"),
            csrf=csrf_token(s.keyring, f"approve:{record.id}"),
            secret=request.path_params["secret"],
        )

    async def decide(request: Request) -> Response:
        found = await find(request)
        if isinstance(found, Response):
            return found
        s, record = found
        form = await read_form(request)
        if form is None or not csrf_ok(s.keyring, f"approve:{record.id}", form.get("csrf")):
            return message(
                403,
                "Form expired or forged",
                "The form's security token is missing or wrong. Reload this page from the link and try again. "
                "Nothing was approved.",
            )
        decision = form.get("decision")
        if decision not in ("approve", "decline"):
            return message(400, "Nothing decided", "Choose Approve or Decline.")
        outcome = "approved" if decision == "approve" else "declined"
        details = {
            "outcome": outcome,
            "client_order_id": record.details.get("client_order_id"),
            "environment": record.details.get("environment"),
        }

        async def record_answer(session: AsyncSession) -> None:
            if s.audit is not None:
                from alpaca_vault.audit.chain import CONSOLE

                await s.audit.append(
                    record.user_id,
                    "order.approval",
                    CONSOLE,
                    credential_name=record.details.get("credential"),
                    details=details,
                    session=session,
                )

        # The use of the link and its audit event commit together: of two racing answers only the
        # one that wins the link is recorded, and an answer whose record fails does not count.
        try:
            won = await s.links.consume(record, outcome, record_with=record_answer)
        except Exception:  # AuditUnavailable, or anything else: fail closed, the link stays unused
            return message(
                503,
                "Not recorded",
                "The audit trail cannot be written right now, so your answer was not taken. Try again shortly.",
            )
        if not won:
            return _link_problem(LinkError("used"))
        if outcome == "approved":
            return message(
                200,
                "Order approved",
                f"You approved the order on '{record.details.get('credential')}'. Your assistant can now send it "
                "(if it is waiting, it goes ahead by itself). The approval covers this exact order only.",
                ok=True,
            )
        return message(
            200,
            "Order declined",
            "You declined the order. It will not be placed, however often it is sent again.",
            ok=True,
        )

    return [
        Route("/approve/{secret}", show, methods=["GET"]),
        Route("/approve/{secret}", decide, methods=["POST"]),
    ]
