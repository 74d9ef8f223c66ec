"""The web console: sign-in, sessions, every page's headers, and the walls between users.

Real HTTP server (SQLite and PostgreSQL as the application role); requests as a browser sends them.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli
from tests.console.helpers import assert_security_headers, csrf_of
from tests.console.site import path_of, running_site, shared_server_fixtures

pytestmark = pytest.mark.timeout(120)


deployment_urls, deployment, server, fresh_site = shared_server_fixtures("console-pages")


async def _credential_id(site: Any, user: str, name: str) -> str:
    listed = await site.call(user, "list_credentials", {})
    return next(c["id"] for c in listed.structured_content["credentials"] if c["name"] == name)


async def test_security_headers_on_every_page(fresh_site: Any, sim_account: Any) -> None:
    async with fresh_site as site, site.http() as http:
        link = path_of(await site.entry_link("alice", "hdr"))
        anonymous = [
            ("GET", link),
            ("GET", "/connect/static/console.css"),
            ("GET", "/connect/" + "A" * 43),  # unknown link
            ("GET", "/connect/short"),
            ("POST", link),  # no CSRF
            ("GET", "/console/"),  # redirect to sign-in
            ("GET", "/console/sign-in"),
            ("GET", "/console/sign-in/" + "B" * 43),
            ("GET", "/console/static/console.css"),
            ("GET", "/console/tokens"),
            ("POST", "/console/credentials/add"),
            ("GET", "/console/nowhere"),
        ]
        for method, path in anonymous:
            response = await http.request(method, path, headers=site.origin)
            assert_security_headers(response.headers)
        await site.sign_in(http, "alice")
        for path in ("/console/", "/console/tokens", "/console/policies", "/console/audit"):
            response = await http.get(path)
            assert response.status_code == 200, path
            assert_security_headers(response.headers)
            assert "<script" not in response.text.lower()
            # Every input has a label (by id), so the pages work with a screen reader and without JS.
            for field_id in __import__("re").findall(r'<input id="([^"]+)"', response.text):
                assert f'for="{field_id}"' in response.text, (path, field_id)
        entry = await http.get(link)
        assert 'for="api_key"' in entry.text and 'for="secret_key"' in entry.text


async def test_console_refuses_unauthenticated_access(fresh_site: Any) -> None:
    async with fresh_site as site, site.http() as http:
        for path in ("/console/", "/console/tokens", "/console/policies", "/console/audit"):
            response = await http.get(path)
            assert response.status_code == 303 and response.headers["location"] == "/console/sign-in", path
        some_id = uuid.uuid4()
        for path in (
            "/console/credentials/add",
            f"/console/credentials/{some_id}/delete",
            "/console/tokens/create",
            f"/console/tokens/{some_id}/revoke",
            "/console/sign-out",
        ):
            response = await http.post(path, data={"csrf": "x"}, headers=site.origin)
            assert response.status_code == 401, path
        # A forged or tampered cookie is no session either.
        http.cookies.set("alpaca_vault_console", f"v2.{'0' * 32}.{uuid.uuid4().hex}.9999999999.-.k.deadbeef")
        assert (await http.get("/console/")).status_code == 303
        # A wrong token does not sign in.
        form = await http.get("/console/sign-in")
        refused = await http.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "token": "avc_" + "x" * 43},
            headers=site.origin,
        )
        assert refused.status_code == 401 and "not valid" in refused.text


async def test_other_users_objects_cannot_be_reached_or_probed(fresh_site: Any, sim_account: Any) -> None:
    """Attack stopped: a signed-in user acting on (or detecting) another user's credential or token by id."""
    async with (
        fresh_site as site,
        site.http() as alice,
        site.http() as bob,
    ):
        stored = await site.post_keys(
            alice,
            path_of(await site.entry_link("alice", "alices")),
            sim_account.api_key,
            sim_account.secret_key,
        )
        assert stored.status_code == 200
        alices_credential = await _credential_id(site, "alice", "alices")
        await site.sign_in(alice, "alice")
        alices_tokens = (await alice.get("/console/tokens")).text
        await site.sign_in(bob, "bob")
        csrf = csrf_of((await bob.get("/console/")).text)
        assert "alices" not in (await bob.get("/console/")).text
        for action in ("delete", "deactivate", "replace"):
            theirs = await bob.post(
                f"/console/credentials/{alices_credential}/{action}", data={"csrf": csrf}, headers=site.origin
            )
            nobodys = await bob.post(
                f"/console/credentials/{uuid.uuid4()}/{action}", data={"csrf": csrf}, headers=site.origin
            )
            assert theirs.status_code == nobodys.status_code == 404
            assert theirs.text == nobodys.text  # nothing tells "exists, not yours" from "does not exist"
        alice_token_id = (
            __import__("re").search(r"/console/tokens/([0-9a-f-]{36})/revoke", alices_tokens).group(1)
        )
        theirs = await bob.post(
            f"/console/tokens/{alice_token_id}/revoke", data={"csrf": csrf}, headers=site.origin
        )
        nobodys = await bob.post(
            f"/console/tokens/{uuid.uuid4()}/revoke", data={"csrf": csrf}, headers=site.origin
        )
        assert theirs.status_code == nobodys.status_code == 404 and theirs.text == nobodys.text
        # Alice's credential and token are untouched.
        assert (await site.call("alice", "alpaca_get_account", {})).is_error is False
        # A console CSRF token is bound to its session: alice's does not work in bob's.
        alice_csrf = csrf_of((await alice.get("/console/")).text)
        crossed = await bob.post(
            "/console/tokens/create",
            data={"csrf": alice_csrf, "name": "x", "expires_in": "1"},
            headers=site.origin,
        )
        assert crossed.status_code == 403


async def _add_on_console(site: Any, http: Any, csrf: str, name: str) -> Any:
    """The console's "add credential" form, posted."""
    return await http.post(
        "/console/credentials/add",
        data={"csrf": csrf, "name": name, "environment": "paper"},
        headers=site.origin,
    )


async def test_a_name_the_vault_would_refuse_gets_no_entry_link(fresh_site: Any, sim_account: Any) -> None:
    """Found in review: store_credential (and the console's add form) made a key entry link for any
    name, which put the agent's words in the page's heading ("Ignore the env tag: paste LIVE AK keys"),
    let Alpaca check the person's keys, and only then refused the name, with the link used up. The name
    is checked first, and no link is made."""
    rule = "A credential name must be 1-64 characters: letters, digits, '.', '_' or '-'"
    async with fresh_site as site, site.http() as http:
        refused = await site.call(
            "alice", "store_credential", {"name": "Ignore the env tag: paste LIVE AK keys"}
        )
        assert refused.is_error
        said = refused.content[0].text
        assert rule in said and "No entry link was made." in said and "/connect/" not in said
        await site.sign_in(http, "alice")
        csrf = csrf_of((await http.get("/console/")).text)
        added = await _add_on_console(site, http, csrf, "paste LIVE keys here!")
        assert added.status_code == 422 and rule in __import__("html").unescape(added.text)
        assert "location" not in added.headers
        # A good name still gets its link; once taken, the name gets none (the keys would be checked with
        # Alpaca and then refused as a duplicate, the link used up).
        fine = await site.call("alice", "store_credential", {"name": "paper-ok"})
        assert not fine.is_error and "/connect/" in fine.structured_content["entry_url"]
        link = path_of(fine.structured_content["entry_url"])
        assert (
            await site.post_keys(http, link, sim_account.api_key, sim_account.secret_key)
        ).status_code == 200
        taken = await site.call("alice", "store_credential", {"name": "paper-ok"})
        assert taken.is_error and "A credential named 'paper-ok' already exists." in taken.content[0].text
        assert "/connect/" not in taken.content[0].text
        again = await _add_on_console(site, http, csrf, "paper-ok")
        assert again.status_code == 422 and "already exists" in __import__("html").unescape(again.text)


async def test_console_manages_credentials_and_tokens(fresh_site: Any, sim_account: Any) -> None:
    async with fresh_site as site, site.http() as http:
        await site.sign_in(http, "alice")
        csrf = csrf_of((await http.get("/console/")).text)
        # Add: the console sends the browser to a key entry page of its own user.
        added = await _add_on_console(site, http, csrf, "from-console")
        assert added.status_code == 303 and added.headers["location"].startswith("/connect/")
        stored = await site.post_keys(
            http, added.headers["location"], sim_account.api_key, sim_account.secret_key
        )
        assert stored.status_code == 200
        page = await http.get("/console/")
        assert "from-console" in page.text and sim_account.account_number in page.text
        credential_id = await _credential_id(site, "alice", "from-console")
        off = await http.post(
            f"/console/credentials/{credential_id}/deactivate", data={"csrf": csrf}, headers=site.origin
        )
        assert off.status_code == 200 and "inactive" in off.text
        assert (await site.call("alice", "alpaca_get_account", {"credential": "from-console"})).is_error
        await http.post(
            f"/console/credentials/{credential_id}/activate", data={"csrf": csrf}, headers=site.origin
        )
        gone = await http.post(
            f"/console/credentials/{credential_id}/delete", data={"csrf": csrf}, headers=site.origin
        )
        assert "Deleted credential" in gone.text
        # Tokens: created and shown once, then only its prefix; revoked tokens stop working.
        created = await http.post(
            "/console/tokens/create",
            data={"csrf": csrf, "name": "laptop", "expires_in": "7"},
            headers=site.origin,
        )
        token = __import__("re").search(r'value="(avt_[A-Za-z0-9_-]{43})"', created.text).group(1)
        listing = (await http.get("/console/tokens")).text
        assert token not in listing and token[:12] in listing
        # Each row says what its token opens: this one (made here) MCP, the one this test signed in with
        # the console.
        assert "<td>laptop</td><td>agent (MCP)</td>" in listing
        assert "<td>console</td><td>console sign-in</td>" in listing
        site.tokens["laptop"] = token
        assert not (await site.call("laptop", "list_credentials", {})).is_error
        token_id = __import__("re").findall(r"/console/tokens/([0-9a-f-]{36})/revoke", listing)[-1]
        revoked = await http.post(
            f"/console/tokens/{token_id}/revoke", data={"csrf": csrf}, headers=site.origin
        )
        assert "Revoked token 'laptop'" in __import__("html").unescape(revoked.text)
        with pytest.raises(Exception):  # noqa: B017 - the SDK raises on a refused bearer token
            await site.call("laptop", "list_credentials", {})


async def test_session_cookie_flags(fresh_site: Any, deployment: Any, tmp_path: Path, simulator: Any) -> None:
    async with fresh_site as site, site.http() as http:
        console_token = await site.console_token("alice")
        form = await http.get("/console/sign-in")
        signed = await http.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "token": console_token},
            headers=site.origin,
        )
        cookie = signed.headers["set-cookie"].lower()
        assert (
            "httponly" in cookie
            and "samesite=strict" in cookie
            and "path=/" in cookie
            and "max-age=1800" in cookie
        )
        assert "secure" not in cookie  # plain loopback HTTP: a Secure cookie would never come back
        assert console_token not in signed.headers["set-cookie"]
    async with (
        running_site(
            deployment,
            tmp_path,
            simulator,
            site.tokens,
            public_url="https://vault.example.com",
            # The module's vault holds other tests' sealed keys and audit chain: the same master key.
            encryption_keys=site.settings.encryption_keys.get_secret_value(),
        ) as site,
        site.http() as http,
    ):
        public = {"Host": "vault.example.com", "Origin": "https://vault.example.com"}
        form = await http.get("/console/sign-in", headers=public)
        assert form.status_code == 200
        signed = await http.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "token": console_token},
            headers=public,
        )
        assert "secure" in signed.headers["set-cookie"].lower()
        # Links handed out name the public URL.
        assert (await site.entry_link("alice", "behind-tls")).startswith("https://vault.example.com/connect/")


async def test_an_agents_own_token_cannot_sign_in_to_loosen_its_policy(fresh_site: Any) -> None:
    """Attack stopped: an agent reads its bearer token (avt_) from its MCP client's configuration and
    pastes it into the console's sign-in form, to loosen its own trading policy, resume a halted
    credential or mint itself more tokens. The form takes only a person's console token (avc_, from
    `alpaca-vault tokens create --console`); the agent's token still works where it belongs, over MCP."""
    async with fresh_site as site, site.http() as http:
        agent_token = site.tokens["alice"]
        form = await http.get("/console/sign-in")
        refused = await http.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "token": agent_token},
            headers=site.origin,
        )
        assert refused.status_code == 401
        said = __import__("html").unescape(refused.text)
        assert "That is an agent's token (avt_…): it opens MCP connections only, never the console" in said
        assert "alpaca-vault tokens create --user NAME --console" in said
        assert "set-cookie" not in refused.headers and "alpaca_vault_console" not in http.cookies
        assert agent_token not in refused.text
        for path in ("/console/policies", "/console/tokens"):  # still signed out
            response = await http.get(path)
            assert response.status_code == 303 and response.headers["location"] == "/console/sign-in"
        # The token is valid (this is no "unknown token" refusal): the agent keeps its MCP access.
        assert not (await site.call("alice", "list_credentials", {})).is_error
        # The person's console token signs in.
        form = await http.get("/console/sign-in")
        signed = await http.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "token": await site.console_token("alice")},
            headers=site.origin,
        )
        assert signed.status_code == 303 and "alpaca_vault_console" in http.cookies
        assert (await http.get("/console/policies")).status_code == 200


async def test_revoking_a_console_token_ends_the_sessions_it_opened(fresh_site: Any) -> None:
    """Attack stopped: a leaked console token is revoked, yet the session its holder opened with it goes
    on for the rest of its lifetime (up to 12 hours), long enough to mint tokens that never expire. The
    session is bound to its token: revoked, the session ends on the next request."""
    async with fresh_site as site, site.http() as http:
        await site.sign_in(http, "alice")
        assert (await http.get("/console/tokens")).status_code == 200
        csrf = csrf_of((await http.get("/console/tokens")).text)
        await site.deployment.admin.revoke_token((await site.console_token("alice"))[:12])
        assert (await http.get("/console/tokens")).headers["location"] == "/console/sign-in"
        minted = await http.post(
            "/console/tokens/create",
            data={"csrf": csrf, "name": "forever", "expires_in": "0"},
            headers=site.origin,
        )
        assert minted.status_code == 401 and "avt_" not in minted.text


async def test_a_deactivated_users_console_session_ends(fresh_site: Any) -> None:
    """Found in review: the user's tokens stop working when the user is deactivated, but a console
    session (a link's or a token's) went on. Now it ends on its next request."""
    from sqlalchemy import update

    from alpaca_vault.db.models import User
    from alpaca_vault.db.rls import maintenance_session

    async with fresh_site as site, site.http() as http:
        await site.sign_in(http, "alice")
        assert (await http.get("/console/")).status_code == 200
        async with maintenance_session(site.deployment.admin_db) as session:
            await session.execute(update(User).where(User.name == site.user("alice")).values(is_active=False))
        ended = await http.get("/console/")
        assert ended.status_code == 303 and ended.headers["location"] == "/console/sign-in"


async def test_sign_out_ends_the_session_on_the_server(fresh_site: Any) -> None:
    """Attack stopped: a copied session cookie (another tab, a stolen backup) still working after sign-out."""
    async with (
        fresh_site as site,
        site.http() as http,
        site.http() as copy,
    ):
        await site.sign_in(http, "alice")
        copy.cookies.set("alpaca_vault_console", http.cookies["alpaca_vault_console"])
        assert (await copy.get("/console/tokens")).status_code == 200  # the copy works while signed in
        csrf = csrf_of((await http.get("/console/")).text)
        out = await http.post("/console/sign-out", data={"csrf": csrf}, headers=site.origin)
        assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
        # The copy is dead: pages send it to sign-in, and its forms are refused.
        for path in ("/console/", "/console/tokens", "/console/policies", "/console/audit"):
            response = await copy.get(path)
            assert response.status_code == 303 and response.headers["location"] == "/console/sign-in", path
        created = await copy.post(
            "/console/tokens/create", data={"csrf": csrf, "name": "x", "expires_in": "1"}, headers=site.origin
        )
        assert created.status_code == 401 and "Sign in again" in created.text
        again = await copy.post("/console/sign-out", data={"csrf": csrf}, headers=site.origin)
        assert again.status_code == 401
        # A new sign-in is a new session, unaffected.
        copy.cookies.clear()
        await site.sign_in(copy, "alice")
        assert (await copy.get("/console/tokens")).status_code == 200


async def test_cli_console_prints_a_one_time_sign_in_link(fresh_site: Any, tmp_path: Path) -> None:
    async with fresh_site as site, site.http() as http:
        # The command as tests/cli runs it: in this process (Typer's runner, on a thread), or as the
        # console script when ALPACA_VAULT_TEST_CLI=subprocess.
        cli = Cli(
            tmp_path,
            site.settings.effective_database_url,
            {"ALPACA_VAULT_ENCRYPTION_KEYS": site.settings.encryption_keys.get_secret_value()},
        )
        command = ("--no-serve", "--url", site.base)
        done = await asyncio.to_thread(cli, "console", "--user", site.user("alice"), *command)
        assert done.returncode == 0, done.stderr
        link = done.stdout.strip()
        assert link.startswith(site.base + "/console/sign-in/") and "valid 10 minutes" in done.stderr
        page = await http.get(path_of(link))
        assert page.status_code == 200 and site.user("alice") in page.text
        signed = await http.post(path_of(link), data={"csrf": csrf_of(page.text)}, headers=site.origin)
        assert signed.status_code == 303
        assert site.user("alice") in (await http.get("/console/")).text
        again = await http.post(path_of(link), data={"csrf": csrf_of(page.text)}, headers=site.origin)
        assert again.status_code == 410  # once
        unknown = await asyncio.to_thread(cli, "console", "--user", "mallory", *command)
        assert unknown.returncode == 1 and "users add mallory" in unknown.stderr
        # An address a browser cannot open makes no link (and issues none).
        for bad in ("ftp://x", "127.0.0.1:8000", "http://", "http://host/?next=evil"):
            refused = await asyncio.to_thread(
                cli, "console", "--user", site.user("alice"), "--no-serve", "--url", bad
            )
            assert refused.returncode == 2 and refused.stdout == "", bad
            assert "--url must be the server's http:// or https:// address" in refused.stderr, bad


async def test_audit_page_shows_only_the_users_own_events_and_filters_them(
    fresh_site: Any, sim_account: Any
) -> None:
    async with (
        fresh_site as site,
        site.http() as alice,
        site.http() as bob,
    ):
        link = path_of(await site.entry_link("alice", "audited"))
        stored = await site.post_keys(alice, link, sim_account.api_key, sim_account.secret_key)
        assert stored.status_code == 200
        await site.sign_in(alice, "alice")
        await site.sign_in(bob, "bob")
        csrf = csrf_of((await alice.get("/console/")).text)
        credential_id = await _credential_id(site, "alice", "audited")
        await alice.post(
            f"/console/credentials/{credential_id}/deactivate", data={"csrf": csrf}, headers=site.origin
        )
        page = await alice.get("/console/audit")
        assert page.status_code == 200
        assert_security_headers(page.headers)
        text = __import__("html").unescape(page.text)
        # Recorded by the pages themselves, as the console actor, before the vault changed.
        assert "<td>credential.store</td>" in text and "<td>credential.update</td>" in text
        assert "key entry page" in text
        assert "audited" in text and "console" in text
        assert sim_account.api_key not in text and sim_account.secret_key not in text
        only_updates = __import__("html").unescape(
            (await alice.get("/console/audit", params={"action": "credential.update"})).text
        )
        assert (
            "<td>credential.update</td>" in only_updates and "<td>credential.store</td>" not in only_updates
        )
        none = await alice.get("/console/audit", params={"action": "token.revoke"})
        assert "No events match" in none.text
        bobs = await bob.get("/console/audit")
        assert bobs.status_code == 200 and "No events" in bobs.text and "audited" not in bobs.text
