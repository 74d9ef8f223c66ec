"""The trading policy page in a real browser (headless Chromium, JavaScript off): view, edit, a bad
value refused with the CLI's own text and nothing changed, the kill switch stopping an agent's order
(MCP Client, simulator order count), and another user's credential out of reach. Makes
docs/screenshots/console-policies.png and console-policy-edit.png.

The walk runs in Chromium on SQLite and, on PostgreSQL, as the same steps with the pages' own forms
over HTTP (``FormPage``): the browser is the same on both backends, the database under it is not.

Attack stopped: a signed-in user reading or changing another user's policy by guessing its id.
"""

from __future__ import annotations

import html
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.console.formpage import FormPage
from tests.console.helpers import DOCS, assert_security_headers, csrf_of
from tests.console.site import path_of, running_site
from tests.fixtures.mcp_server import text_of

pytestmark = pytest.mark.timeout(180)


def _screenshots(deployment: Any) -> Path | None:
    """docs/screenshots when UPDATE_SCREENSHOTS=1 asks for them (from the SQLite run), else None: nothing
    reads these pictures but the docs, so an ordinary run does not draw them (~0.2 s of Chromium each, #9)."""
    return DOCS if os.environ.get("UPDATE_SCREENSHOTS") and deployment.backend == "sqlite" else None


async def _policy(site: Any, user: str, name: str) -> dict[str, Any]:
    result = await site.call(user, "get_trading_policy", {"credential": name})
    assert not result.is_error, text_of(result)
    policy: dict[str, Any] = result.structured_content["policy"]
    return policy


async def test_policy_page_views_edits_refuses_and_halts(
    deployment: Any, tmp_path: Path, simulator: Any, sim_account: Any, browser: Any
) -> None:
    shots = _screenshots(deployment)
    async with running_site(deployment, tmp_path, simulator) as site, site.http() as http:
        link = path_of(await site.entry_link("alice", "paper-main"))
        assert (
            await site.post_keys(http, link, sim_account.api_key, sim_account.secret_key)
        ).status_code == 200
        # The person: Chromium on SQLite; on PostgreSQL the same walk with the pages' own forms over
        # HTTP (tests/console/formpage.py), where the policy rows under the application role differ.
        if deployment.backend == "sqlite":
            context = await browser.new_context(
                viewport={"width": 1100, "height": 900}, java_script_enabled=False
            )
            page = await context.new_page()
        else:
            context = page = FormPage(site.http())
        await page.goto(site.base + "/console/sign-in")
        await page.get_by_label("Console token").fill(await site.console_token("alice"))
        async with page.expect_navigation():
            await page.get_by_role("button", name="Sign in").click()

        # View: the defaults of a new paper credential, as `alpaca-vault policy show` words them.
        response = await page.goto(site.base + "/console/policies")
        assert response is not None and response.status == 200
        assert_security_headers(await response.all_headers())
        shown = await page.inner_text("main")
        assert "paper-main" in shown and "Defaults for a new credential" in shown and "30 s" in shown

        # Edit: three fields at once; the page and the agent's read-only tool both see the change.
        async with page.expect_navigation():
            await page.get_by_role("link", name="Edit paper-main").click()
        await page.get_by_label("Max order notional").fill("5000")
        await page.get_by_label("Deny symbols").fill("tsla, gme")
        await page.get_by_label("Allow short (sells larger than the position)").uncheck()
        async with page.expect_navigation():
            await page.get_by_role("button", name="Save policy").click()
        shown = await page.inner_text("main")
        assert (
            "Updated the trading policy of 'paper-main': allow_short, deny_symbols, max_order_notional."
            in shown
        )
        assert "$5,000" in shown and "GME, TSLA" in shown
        policy = await _policy(site, "alice", "paper-main")
        assert policy["max_order_notional"] == "5000" and policy["deny_symbols"] == ["GME", "TSLA"]
        assert policy["allow_short"] is False and policy["is_default"] is False

        # A bad value: the CLI's own error text, and nothing changed (not even the good field beside it).
        await page.goto(site.base + f"/console/policies/{policy['credential_id']}")
        await page.get_by_label("Max orders per day").fill("7")
        await page.get_by_label("Max daily notional").fill("-20")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Save policy").click()
        alert = await page.get_by_role("alert").first.inner_text()
        assert alert == (
            "--max-daily-notional takes a dollar amount above 0 with at most 2 decimals (e.g. 5000 or "
            "2500.50), or 'none' for no limit; got '-20'. Nothing was changed."
        )
        assert await page.get_by_label("Max daily notional").input_value() == "-20"  # the person's input kept
        if shots is not None:
            await page.screenshot(path=str(shots / "console-policy-edit.png"), full_page=True)
        after = await _policy(site, "alice", "paper-main")
        assert after == policy

        # The kill switch: halted from the page, the agent's next order is refused before Alpaca.
        await page.goto(site.base + "/console/policies")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Halt paper-main").click()
        assert "Halted 'paper-main' (paper)" in await page.inner_text("main")
        if shots is not None:
            await page.screenshot(path=str(shots / "console-policies.png"), full_page=True)
        before = len(simulator.orders(sim_account.api_key))
        order = {"symbol": "AAPL", "side": "buy", "qty": 1, "type": "limit", "limit_price": "100"}
        refused = await site.call("alice", "alpaca_place_order", {"credential": "paper-main", **order})
        assert refused.is_error and "is halted" in text_of(refused), text_of(refused)
        assert len(simulator.orders(sim_account.api_key)) == before
        async with page.expect_navigation():
            await page.get_by_role("button", name="Resume paper-main").click()
        placed = await site.call("alice", "alpaca_place_order", {"credential": "paper-main", **order})
        assert not placed.is_error, text_of(placed)
        assert len(simulator.orders(sim_account.api_key)) == before + 1

        # Every change is in the audit trail, as the console's.
        await page.goto(site.base + "/console/audit?action=policy.change")
        trail = await page.inner_text("main")
        assert trail.count("policy.change") >= 3 and "console" in trail
        await context.close()


async def test_another_users_policy_cannot_be_reached_or_probed(
    deployment: Any, tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    async with (
        running_site(deployment, tmp_path, simulator) as site,
        site.http() as alice,
        site.http() as bob,
    ):
        link = path_of(await site.entry_link("alice", "alices"))
        assert (
            await site.post_keys(alice, link, sim_account.api_key, sim_account.secret_key)
        ).status_code == 200
        alices = (await _policy(site, "alice", "alices"))["credential_id"]
        await site.sign_in(bob, "bob")
        csrf = csrf_of((await bob.get("/console/")).text)
        assert "alices" not in (await bob.get("/console/policies")).text
        nobody = str(uuid.uuid4())
        for method, suffix, data in (
            ("GET", "", None),
            ("POST", "", {"csrf": csrf, "mode": "read_only"}),
            ("POST", "/halt", {"csrf": csrf}),
            ("POST", "/resume", {"csrf": csrf}),
        ):
            theirs = await bob.request(
                method, f"/console/policies/{alices}{suffix}", data=data, headers=site.origin
            )
            nobodys = await bob.request(
                method, f"/console/policies/{nobody}{suffix}", data=data, headers=site.origin
            )
            assert theirs.status_code == nobodys.status_code == 404, (method, suffix)
            assert theirs.text == nobodys.text  # nothing tells "exists, not yours" from "does not exist"
            assert_security_headers(theirs.headers)
        assert (await bob.get("/console/policies/not-an-id")).status_code == 404
        policy = await _policy(site, "alice", "alices")
        assert policy["is_default"] is True and policy["halted"] is False and policy["mode"] == "trade"
        # And the page's form needs its CSRF token: a post without one changes nothing.
        await site.sign_in(alice, "alice")
        forged = await alice.post(f"/console/policies/{alices}/halt", data={}, headers=site.origin)
        assert forged.status_code == 403 and "security token" in html.unescape(forged.text)
        assert (await _policy(site, "alice", "alices"))["halted"] is False
        assert re.search("alices", (await alice.get("/console/policies")).text)
