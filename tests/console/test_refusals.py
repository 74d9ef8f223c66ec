"""Every way a key entry link or form can be misused is refused, each by its own test.

Each names the attack it stops. Real HTTP server (SQLite and PostgreSQL as the application role),
real simulator; requests as a browser would send them, then one thing changed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from alpaca_vault.db.rls import maintenance_session
from tests.console.helpers import assert_security_headers, csrf_of
from tests.console.site import path_of, shared_server_fixtures
from tests.fixtures.mcp_server import text_of
from tests.server.test_secret_canary import key_id_marker, leaks, secret_marker

pytestmark = pytest.mark.timeout(120)


deployment_urls, deployment, server, fresh_site = shared_server_fixtures("refusals")


async def _credential_names(site: Any, user: str) -> list[str]:
    listed = await site.call(user, "list_credentials", {})
    return [c["name"] for c in listed.structured_content["credentials"]]


async def test_a_used_link_is_refused(deployment: Any, fresh_site: Any, sim_account: Any) -> None:
    """Attack stopped: replaying a key entry link (from browser history, a shared screen) after use."""
    async with fresh_site as site, site.http() as http:
        link = path_of(await site.entry_link("alice", "once"))
        stored = await site.post_keys(http, link, sim_account.api_key, sim_account.secret_key)
        assert stored.status_code == 200 and "Keys stored" in stored.text
        again = await http.get(link)
        assert again.status_code == 410 and "already been used" in again.text
        assert_security_headers(again.headers)
        replay = await http.post(
            link, data={"csrf": "x", "api_key": "PKX", "secret_key": "y"}, headers=site.origin
        )
        assert replay.status_code == 410
        assert await _credential_names(site, "alice") == ["once"]


async def test_an_expired_link_is_refused(deployment: Any, fresh_site: Any, sim_account: Any) -> None:
    """Attack stopped: using a link found later (a log, an old chat) after its lifetime."""
    async with fresh_site as site, site.http() as http:
        link = path_of(await site.entry_link("alice", "late"))
        form = await http.get(link)
        assert form.status_code == 200
        async with maintenance_session(deployment.admin_db) as session:
            await session.execute(text("UPDATE one_time_links SET expires_at = :past"), {"past": _past()})
        expired = await http.get(link)
        assert expired.status_code == 410 and "expired" in expired.text
        late = await http.post(
            link,
            data={
                "csrf": csrf_of(form.text),
                "api_key": sim_account.api_key,
                "secret_key": sim_account.secret_key,
            },
            headers=site.origin,
        )
        assert late.status_code == 410
        assert await _credential_names(site, "alice") == []


def _past() -> Any:
    from alpaca_vault.db.models import utcnow

    return utcnow() - timedelta(minutes=1)


async def test_another_users_link_is_refused_in_a_browser_signed_in_as_someone_else(
    deployment: Any, fresh_site: Any, sim_account: Any
) -> None:
    """Attack stopped: tricking a signed-in user into storing their keys in someone else's vault."""
    async with fresh_site as site, site.http() as http:
        link = path_of(await site.entry_link("alice", "alices"))
        await site.sign_in(http, "bob")
        shown = await http.get(link)
        assert shown.status_code == 403 and "another user" in shown.text
        posted = await http.post(
            link,
            data={"csrf": "x", "api_key": sim_account.api_key, "secret_key": sim_account.secret_key},
            headers=site.origin,
        )
        assert posted.status_code == 403
        assert await _credential_names(site, "alice") == [] and await _credential_names(site, "bob") == []


async def test_a_missing_or_wrong_csrf_token_is_refused(
    deployment: Any, fresh_site: Any, sim_account: Any
) -> None:
    """Attack stopped: a forged form post (CSRF) into an open key entry page."""
    async with fresh_site as site, site.http() as http:
        link = path_of(await site.entry_link("alice", "guarded"))
        other = path_of(await site.entry_link("alice", "other"))
        keys = {"api_key": sim_account.api_key, "secret_key": sim_account.secret_key}
        other_csrf = csrf_of((await http.get(other)).text)
        own_csrf = csrf_of((await http.get(link)).text)
        for forged in ({}, {"csrf": ""}, {"csrf": own_csrf[:-2] + "00"}, {"csrf": other_csrf}):
            refused = await http.post(link, data={**forged, **keys}, headers=site.origin)
            assert refused.status_code == 403 and "security token" in refused.text, forged
            assert_security_headers(refused.headers)
        assert await _credential_names(site, "alice") == []
        # The refusals used nothing up: the real form still works.
        ok = await http.post(link, data={"csrf": own_csrf, **keys}, headers=site.origin)
        assert ok.status_code == 200 and await _credential_names(site, "alice") == ["guarded"]


async def test_a_foreign_host_or_origin_is_refused(
    deployment: Any, fresh_site: Any, sim_account: Any
) -> None:
    """Attack stopped: DNS rebinding (foreign Host) and cross-site posts (foreign or null Origin)."""
    async with fresh_site as site, site.http() as http:
        link = path_of(await site.entry_link("alice", "pinned"))
        assert (await http.get(link, headers={"Host": "rebind.attacker.example"})).status_code == 421
        assert (
            await http.get("/console/sign-in", headers={"Host": "rebind.attacker.example"})
        ).status_code == 421
        data = {
            "csrf": csrf_of((await http.get(link)).text),
            "api_key": sim_account.api_key,
            "secret_key": sim_account.secret_key,
        }
        for headers in (
            {"Origin": "https://attacker.example"},
            {"Origin": "null"},  # a sandboxed or no-referrer cross-site page
            {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
            {},  # no Origin and no Sec-Fetch-Site: not provably ours
        ):
            refused = await http.post(link, data=data, headers=headers)
            assert refused.status_code == 403, headers
            assert_security_headers(refused.headers)
        assert await _credential_names(site, "alice") == []
        # What Chromium sends for our own form under Referrer-Policy no-referrer is accepted.
        ok = await http.post(link, data=data, headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
        assert ok.status_code == 200, ok.text


async def test_secrets_as_tool_arguments_are_refused_without_the_setting(
    fresh_site: Any, simulator: Any
) -> None:
    """Attack stopped: an agent (or a prompt injection) getting keys typed into the chat and stored."""
    async with fresh_site as site:
        key, secret = key_id_marker(), secret_marker()
        simulator.new_account(api_key=key, secret_key=secret)
        stored = await site.call(
            "alice", "store_credential", {"name": "chat", "api_key": key, "secret_key": secret}
        )
        assert stored.is_error
        said = text_of(stored)
        assert "ALPACA_VAULT_ALLOW_SECRETS_IN_ARGUMENTS" in said and "one-time page" in said
        assert not leaks(key, said) and not leaks(secret, said)
        # The right way: a pending key entry page, nothing stored yet.
        await site.call("alice", "store_credential", {"name": "chat", "environment": "paper"})
        updated = await site.call(
            "alice", "update_credential", {"credential": "chat", "api_key": key, "secret_key": secret}
        )
        assert updated.is_error and "ALPACA_VAULT_ALLOW_SECRETS_IN_ARGUMENTS" in text_of(updated)
        assert await _credential_names(site, "alice") == []
