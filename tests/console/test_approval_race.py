"""Two answers racing on one order approval link (#14 item 5): the audit trail matches what counted.

The attack: approve and decline are posted at once on one link (two tabs, or a person and someone
with the forwarded link). When the answer was audited before the link was used, both requests wrote
an ``order.approval`` event and only one answer counted, so the trail claimed an approval that never
took effect. Now the use of the link and its event commit in one transaction: exactly one answer
counts, and the trail holds exactly one event, naming that answer. Both backends, no browser: the
approval page's own routes over ASGI, on a real database and audit trail.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx2
from sqlalchemy import text
from starlette.applications import Starlette

from alpaca_vault.audit import AuditLog, ChainKeys
from alpaca_vault.console.approval import OrderApprovals, approval_routes
from alpaca_vault.console.links import LinkStore
from alpaca_vault.db import Database
from alpaca_vault.vault.keyring import KeyRing, generate_key
from tests.console.helpers import csrf_of

ROUNDS = 3  # each round a fresh link; every one must come out consistent


@asynccontextmanager
async def approval_pages(deployment: Any) -> AsyncIterator[tuple[httpx2.AsyncClient, Any, uuid.UUID]]:
    """The approval page's routes over ASGI on the server's database, with a signed audit trail."""
    await deployment.admin.add_user("alice")
    user_id = await deployment.admin.user_id("alice")
    assert user_id is not None
    keyring = KeyRing.from_string(generate_key())
    db = Database.create(deployment.server_url)
    audit = AuditLog(db, ChainKeys.from_keyring(keyring))
    # What the routes read of the console's services: the link store, the key ring, the trail.
    services = SimpleNamespace(links=LinkStore(db), keyring=keyring, audit=audit)

    async def provide() -> Any:
        return services

    app = Starlette(routes=approval_routes(provide))
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as http:
            yield http, services, user_id
    finally:
        audit.close()
        await db.dispose()


async def test_approve_and_decline_racing_on_one_link_count_once_and_are_audited_once(
    deployment: Any,
) -> None:
    async with approval_pages(deployment) as (http, services, user_id):
        audit = services.audit
        for round_ in range(ROUNDS):
            issued = await services.links.issue(
                user_id,
                "order_approval",
                lifetime=timedelta(minutes=5),
                bound_to=f"order-digest-{round_}",
                details={"credential": "paper-main", "client_order_id": f"race-{round_}"},
            )
            page = await http.get(f"/approve/{issued.secret}")
            assert page.status_code == 200, page.text
            form = {"csrf": csrf_of(page.text)}
            approve, decline = await asyncio.gather(
                http.post(f"/approve/{issued.secret}", data={**form, "decision": "approve"}),
                http.post(f"/approve/{issued.secret}", data={**form, "decision": "decline"}),
            )
            answered = {"approved": approve, "declined": decline}
            winners = [o for o, r in answered.items() if r.status_code == 200]
            assert len(winners) == 1, [(r.status_code, r.text) for r in answered.values()]
            (winner,) = winners
            loser = answered["declined" if winner == "approved" else "approved"]
            assert "already been used" in loser.text and loser.status_code != 200
            stored = await services.links.get(user_id, issued.id)
            assert stored is not None and stored.outcome == winner
            events = [
                e
                for e in await audit.events(user_id, action="order.approval", limit=None)
                if e.details.get("client_order_id") == f"race-{round_}"
            ]
            assert [e.details["outcome"] for e in events] == [winner]
            assert events[0].credential_name == "paper-main" and events[0].actor == "console"
        assert (await audit.verify(user_id)).ok


async def test_an_answer_whose_audit_event_cannot_be_written_does_not_count_and_leaves_the_link_usable(
    deployment: Any,
) -> None:
    # Fail closed: no answer counts without its record, and the person can answer again later.
    async with approval_pages(deployment) as (http, services, user_id):
        audit = services.audit
        issued = await services.links.issue(
            user_id, "order_approval", lifetime=timedelta(minutes=5), bound_to="order-digest"
        )
        page = await http.get(f"/approve/{issued.secret}")
        form = {"csrf": csrf_of(page.text), "decision": "approve"}
        async with deployment.admin_db.engine.begin() as conn:  # the trail becomes unwritable
            await conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_away"))
        refused = await http.post(f"/approve/{issued.secret}", data=form)
        assert refused.status_code == 503 and "your answer was not taken" in refused.text
        stored = await services.links.get(user_id, issued.id)
        assert stored is not None and stored.used_at is None and stored.outcome is None
        async with deployment.admin_db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE audit_events_away RENAME TO audit_events"))
        approved = await http.post(f"/approve/{issued.secret}", data=form)
        assert approved.status_code == 200 and "Order approved" in approved.text
        assert [e.details["outcome"] for e in await audit.events(user_id, action="order.approval")] == [
            "approved"
        ]


async def test_a_decline_still_counts_after_an_agent_opened_dozens_of_links_for_the_same_order(
    deployment: Any,
) -> None:
    """Attack stopped: an agent retries one held order until it has more unanswered approval links than
    the answer's read looked at (the 50 oldest), so the person's decline on a newer link was never seen
    and every retry opened yet another link instead of being refused. The answer reads answered links
    only, a decline first."""
    async with approval_pages(deployment) as (http, services, user_id):
        approvals = OrderApprovals(services.links, None, lifetime=timedelta(minutes=5))  # type: ignore[arg-type]
        for binding, decision, expected in (
            ("retried-a", "decline", "declined"),
            ("retried-b", "approve", "approved"),
        ):
            issued = [
                await services.links.issue(
                    user_id,
                    "order_approval",
                    lifetime=timedelta(minutes=5),
                    bound_to=binding,
                    details={"credential": "paper-main", "client_order_id": binding},
                )
                for _ in range(55)
            ]
            assert await approvals.answer(user_id, binding) == "none"
            newest = issued[-1].secret
            page = await http.get(f"/approve/{newest}")
            answered = await http.post(
                f"/approve/{newest}", data={"csrf": csrf_of(page.text), "decision": decision}
            )
            assert answered.status_code == 200, answered.text
            assert await approvals.answer(user_id, binding) == expected
