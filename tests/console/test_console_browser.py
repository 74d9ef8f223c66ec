"""A person in a real browser (headless Chromium, no JavaScript needed): sign in with a token, add a
credential through the key entry page, create a token. Also makes the screenshots in docs/screenshots/.
On PostgreSQL the same walk runs with the pages' own forms over HTTP (``FormPage``): one Chromium run
covers the browser, both backends the rows under it.

Attack stopped: keys in a URL or the browser's history; a session cookie readable by scripts or sent
cross-site.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.console.formpage import FormPage
from tests.console.helpers import DOCS, assert_security_headers, watch_urls
from tests.console.site import running_site
from tests.server.test_secret_canary import key_id_marker, leaks, secret_marker

pytestmark = pytest.mark.timeout(180)


async def test_a_person_uses_the_console_in_a_browser(
    deployment: Any, tmp_path: Path, simulator: Any, browser: Any
) -> None:
    api_key, secret = key_id_marker(), secret_marker()
    account = simulator.new_account(api_key=api_key, secret_key=secret)
    # The README's screenshots come from this walk: UPDATE_SCREENSHOTS=1 writes them into docs/screenshots
    # (from the SQLite run). Otherwise only the two asserted on below are drawn, into a temporary directory
    # (the tree stays clean); the others go only to the docs (~0.1 s of Chromium each, #9).
    refresh = os.environ.get("UPDATE_SCREENSHOTS") and deployment.backend == "sqlite"
    shots = DOCS if refresh else tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    async with running_site(deployment, tmp_path, simulator) as site:
        # The person: Chromium on SQLite (and the screenshots); on PostgreSQL the same walk with the pages'
        # own forms over HTTP (tests/console/formpage.py), where the rows under the pages differ.
        if deployment.backend == "sqlite":
            context = await browser.new_context(
                viewport={"width": 1100, "height": 640}, java_script_enabled=False
            )
            urls = watch_urls(context)
            page = await context.new_page()
        else:
            context = page = FormPage(site.http())
            urls = page.requested

        response = await page.goto(site.base + "/console/")
        assert response is not None and page.url.endswith("/console/sign-in")
        assert_security_headers(await response.all_headers())
        if refresh:
            await page.screenshot(path=str(shots / "console-sign-in.png"))
        await page.get_by_label("Console token").fill(await site.console_token("alice"))
        async with page.expect_navigation():
            await page.get_by_role("button", name="Sign in").click()
        assert page.url.endswith("/console/") and "No credentials yet" in await page.inner_text("main")

        cookies = {c["name"]: c for c in await context.cookies()}
        session = cookies["alpaca_vault_console"]
        assert session["httpOnly"] is True and session["sameSite"] == "Strict"

        await page.get_by_label("Name").fill("paper-main")
        await page.get_by_label("Environment").select_option("paper")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Continue to key entry").click()
        assert "/connect/" in page.url
        await page.get_by_label("API key id").fill(api_key)
        await page.get_by_label("Secret key").fill(secret)
        await page.screenshot(path=str(shots / "key-entry.png"))
        async with page.expect_navigation():
            await page.get_by_role("button", name="Check with Alpaca and store").click()
        assert "Keys stored" in await page.inner_text("main")
        if refresh:
            await page.screenshot(path=str(shots / "key-entry-stored.png"))

        await page.goto(site.base + "/console/")
        listed = await page.inner_text("main")
        assert "paper-main" in listed and account.account_number in listed
        await page.screenshot(path=str(shots / "console-credentials.png"))

        await page.goto(site.base + "/console/audit")
        trail = await page.inner_text("main")
        assert "credential.store" in trail and "paper-main" in trail  # the page recorded the entry
        if refresh:
            await page.screenshot(path=str(shots / "console-audit.png"))

        await page.goto(site.base + "/console/tokens")
        await page.get_by_label("Name").fill("laptop")
        await page.get_by_label("Expires in (days, 0 = never)").fill("30")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Create").click()
        token = await page.get_by_label("New token").input_value()
        assert token.startswith("avt_")
        if refresh:
            await page.screenshot(path=str(shots / "console-tokens.png"))
        await context.close()
    for marker in (api_key, secret):
        assert not any(leaks(marker, url) for url in urls), "a key reached a URL"
    assert urls, "no URL was watched"
    if deployment.backend == "sqlite":  # only Chromium draws
        assert all(
            Path(shots / name).stat().st_size > 5000 for name in ("key-entry.png", "console-credentials.png")
        )
