"""The key entry end to end: an MCP client asks to store a credential, a headless Chromium opens the
page the server hands out, a person's keys go into the form, and the agent gets the credential back.

Attack stopped: an Alpaca key or secret passing through the chat. Each test plants unique markers as
the key pair and searches everything the client received (results, elicitation requests,
notifications), the logs, every URL the browser loaded, and the database (sealed only).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_types import ElicitCompleteNotification, ElicitRequestURLParams, ElicitResult
from sqlalchemy import text

from alpaca_vault.db.engine import Database
from alpaca_vault.db.rls import maintenance_session
from alpaca_vault.db.sealed import TOKEN_VERSIONS, SealedValue
from alpaca_vault.server.app import build_server
from alpaca_vault.server.logs import configure_logging
from alpaca_vault.server.runner import serve_http_in_thread
from tests.console.helpers import assert_security_headers, csrf_of, enter_keys, origin_of
from tests.fixtures.databases import migrated_sqlite_file
from tests.fixtures.mcp_server import make_settings, text_of
from tests.fixtures.tool_listing import store_tool_listing
from tests.multiuser.harness import http_settings
from tests.server.test_secret_canary import key_id_marker, leaks, secret_marker
from tests.server.test_stdio import SERVE, server_env

pytestmark = pytest.mark.timeout(180)


class BrowserPerson:
    """A person at a browser: given a URL (from an elicitation or from the agent), enters the keys.

    They keep one tab (one context, every URL it requests recorded) until ``close()``."""

    def __init__(self, browser: Any, api_key: str, secret_key: str) -> None:
        self.browser = browser
        self.api_key, self.secret_key = api_key, secret_key
        self.urls: list[str] = []
        self.pages_text: list[str] = []
        self.elicitations: list[ElicitRequestURLParams] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._context: Any = None
        self._page: Any = None

    async def enter(
        self, url: str, keys: tuple[str, str] | None = None, *, not_before: float | None = None
    ) -> str:
        """Enter this person's keys (or ``keys``, a new pair) on the page at ``url``; with ``not_before``
        (the event loop's clock), the tab is opened at once and the page only then."""
        if self._page is None:
            self._context = await self.browser.new_context()
            self._context.on("request", lambda request: self.urls.append(request.url))
            self._page = await self._context.new_page()
        await _until(not_before)
        api_key, secret_key = keys or (self.api_key, self.secret_key)
        shown = await enter_keys(self._page, url, api_key, secret_key)
        self.urls.append(self._page.url)
        self.pages_text.append(shown)
        return shown

    async def close(self) -> None:
        if self._context is not None:
            await self._context.close()

    async def on_elicitation(self, _context: Any, params: Any) -> ElicitResult:
        """The client's elicitation callback: consent at once, then use the page (as a person would)."""
        assert isinstance(params, ElicitRequestURLParams), params
        self.elicitations.append(params)
        self._tasks.append(asyncio.create_task(self._enter_later(params.url)))
        return ElicitResult(action="accept")

    async def _enter_later(self, url: str) -> None:
        # The server is already waiting for the page when the keys arrive; the tab (or the form) is
        # opened meanwhile, as a person's would be, instead of after the wait (#9).
        await self.enter(url, not_before=asyncio.get_running_loop().time() + 0.2)

    async def settle(self) -> None:
        for task in self._tasks:
            await task


class FormPerson(BrowserPerson):
    """The same person without a browser: the entry page's own form (CSRF field, both inputs) posted
    over HTTP as Chromium posts it, every requested URL recorded. The PostgreSQL runs use it (the
    rows and the role's policies are what differ there); the browser runs once per flow, on SQLite."""

    def __init__(self, api_key: str, secret_key: str) -> None:
        super().__init__(None, api_key, secret_key)

    async def enter(
        self, url: str, keys: tuple[str, str] | None = None, *, not_before: float | None = None
    ) -> str:
        api_key, secret_key = keys or (self.api_key, self.secret_key)

        async def seen(request: httpx2.Request) -> None:
            self.urls.append(str(request.url))

        async with httpx2.AsyncClient(event_hooks={"request": [seen]}, timeout=30) as http:
            form = await http.get(url)
            assert form.status_code == 200, form.status_code
            assert_security_headers(form.headers)
            await _until(not_before)
            answered = await http.post(
                url,
                data={"csrf": csrf_of(form.text), "api_key": api_key, "secret_key": secret_key},
                headers={"Origin": origin_of(url)},
            )
        assert answered.status_code == 200, answered.text
        shown = html.unescape(answered.text)
        self.pages_text.append(shown)
        return shown


async def _until(moment: float | None) -> None:
    """Sleep until ``moment`` on the event loop's clock (at once when it has passed or is None)."""
    if moment is not None:
        await asyncio.sleep(max(0.0, moment - asyncio.get_running_loop().time()))


def assert_nowhere(markers: list[str], *haystacks: str) -> None:
    for marker in markers:
        for haystack in haystacks:
            assert not leaks(marker, haystack), f"marker leaked: {haystack[:300]}"


def dump(*items: Any) -> str:
    return "\n".join(item if isinstance(item, str) else item.model_dump_json(by_alias=True) for item in items)


async def test_stdio_client_with_url_elicitation_on_2025_11_25(
    tmp_path: Path, simulator: Any, browser: Any
) -> None:
    """`alpaca-vault serve` as a subprocess, the client declaring URL elicitation (legacy handshake)."""
    api_key, secret = key_id_marker(), secret_marker()
    account = simulator.new_account(api_key=api_key, secret_key=secret)
    person = BrowserPerson(browser, api_key, secret)
    notifications: list[Any] = []

    async def on_message(message: Any) -> None:
        notifications.append(message)

    # A vault file already at head: the first start's upgrade is test_stdio_round_trips.py's (~0.6 s CPU).
    migrated_sqlite_file(tmp_path / "vault.db")
    # A data dir that has served before: each tool is registered for its first call (the build of every tool
    # at a first start is tests/server/test_cold_start.py's). Its settings are the server's: no key arguments.
    store_tool_listing(tmp_path, allow_secrets_in_arguments=False)
    env = server_env(tmp_path, simulator.base_url, ALPACA_VAULT_ALLOW_SECRETS_IN_ARGUMENTS="false")
    params = StdioServerParameters(command=SERVE[0], args=SERVE[1:], env=env)
    errlog_path = tmp_path / "server-stderr.log"
    errlog = errlog_path.open("w")  # the server's stderr: its logs, searched below
    async with Client(
        stdio_client(params, errlog=errlog),
        mode="legacy",
        elicitation_callback=person.on_elicitation,
        message_handler=on_message,
    ) as client:
        assert client.protocol_version == "2025-11-25"
        stored = await client.call_tool("store_credential", {"name": "desk", "environment": "paper"})
        await person.settle()
        await person.close()
        assert not stored.is_error, text_of(stored)
        assert stored.structured_content["status"] == "stored"
        assert stored.structured_content["credential"]["account_number"] == account.account_number
        # The elicitation asked for URL mode, on the loopback listener, and completed with the same id.
        [asked] = person.elicitations
        assert asked.mode == "url" and asked.url.startswith("http://127.0.0.1:") and "/connect/" in asked.url
        completions = [n for n in notifications if isinstance(n, ElicitCompleteNotification)]
        assert [c.params.elicitation_id for c in completions] == [asked.elicitation_id]
        listed = await client.call_tool("list_credentials", {})
        assert [c["name"] for c in listed.structured_content["credentials"]] == ["desk"]
        got = await client.call_tool("alpaca_get_account", {"credential": "desk"})
        assert (
            not got.is_error and got.structured_content["account"]["account_number"] == account.account_number
        )
        # The listener has closed: the entry is done, nothing is outstanding.
        reader = asyncio.open_connection("127.0.0.1", int(asked.url.split(":")[2].split("/")[0]))
        with pytest.raises(OSError):
            await asyncio.wait_for(reader, 5)
    errlog.close()
    logs = errlog_path.read_text()
    assert "Key entry" in logs  # the server's logs were captured (so their silence below means something)
    stored_files = "".join(p.read_bytes().decode("latin-1") for p in tmp_path.glob("vault.db*"))
    assert_nowhere(
        [api_key, secret],
        dump(stored, listed, got, *person.elicitations),
        dump(*[n for n in notifications if not isinstance(n, Exception)]),
        logs,
        "\n".join(person.urls),
        stored_files,
    )


async def _sealed_rows(admin_url: str) -> list[tuple[str, str]]:
    db = Database.create(admin_url)
    try:
        async with maintenance_session(db) as session:
            rows = await session.execute(text("SELECT api_key, secret_key FROM credentials"))
            return [(str(a), str(s)) for a, s in rows]
    finally:
        await db.dispose()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_http_client_with_url_elicitation(
    deployment: Any,
    tmp_path: Path,
    simulator: Any,
    browser: Any,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    """Over Streamable HTTP: 2026-07-28's input-required round trip (auto) and 2025-11-25 (legacy)."""
    configure_logging("DEBUG")
    caplog.set_level(logging.DEBUG)
    api_key, secret = key_id_marker(), secret_marker()
    account = simulator.new_account(api_key=api_key, secret_key=secret)
    token = await deployment.user_with_token("alice")
    settings = http_settings(
        tmp_path, deployment.server_url, simulator.base_url, allow_secrets_in_arguments=False
    )
    # Chromium once (SQLite, the newest protocol); the other runs post the page's own form over HTTP:
    # the page is the same whatever the protocol, the protocols differ on the MCP side, and on
    # PostgreSQL what differs is the rows under the application role. (The stdio test below and the
    # link test enter keys in Chromium on 2025-11-25 too.)
    in_chromium = deployment.backend == "sqlite" and mode == "auto"
    person = BrowserPerson(browser, api_key, secret) if in_chromium else FormPerson(api_key, secret)
    notifications: list[Any] = []

    async def on_message(message: Any) -> None:
        notifications.append(message)

    with serve_http_in_thread(settings) as url:
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        async with (
            create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
            Client(
                streamable_http_client(url, http_client=http),
                mode=mode,
                elicitation_callback=person.on_elicitation,
                message_handler=on_message,
            ) as client,
        ):
            expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
            assert client.protocol_version == expected
            stored = await client.call_tool("store_credential", {"name": "main"})
            await person.settle()
            await person.close()
            assert not stored.is_error, text_of(stored)
            assert stored.structured_content["status"] == "stored"
            [asked] = person.elicitations
            assert asked.url.startswith(url.removesuffix("/mcp") + "/connect/")
            if mode == "legacy":
                completions = [n for n in notifications if isinstance(n, ElicitCompleteNotification)]
                assert [c.params.elicitation_id for c in completions] == [asked.elicitation_id]
            listed = await client.call_tool("list_credentials", {})
            assert [c["name"] for c in listed.structured_content["credentials"]] == ["main"]
            got = await client.call_tool("alpaca_get_account", {})
            assert got.structured_content["account"]["account_number"] == account.account_number
    sealed = await _sealed_rows(deployment.admin_url)
    assert len(sealed) == 1
    assert all(
        SealedValue.parse(value).version in TOKEN_VERSIONS for value in sealed[0]
    )  # sealed tokens only
    log_text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert_nowhere(
        [api_key, secret],
        dump(stored, listed, got, *person.elicitations),
        dump(*[n for n in notifications if not isinstance(n, Exception)]),
        log_text,
        "\n".join(person.urls),
        json.dumps(sealed),
    )


async def test_client_without_elicitation_gets_the_link_and_the_flow_completes(
    tmp_path: Path, simulator: Any, browser: Any, caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("DEBUG")
    caplog.set_level(logging.DEBUG)
    api_key, secret = key_id_marker(), secret_marker()
    account = simulator.new_account(api_key=api_key, secret_key=secret)
    settings = make_settings(tmp_path / "data", simulator.base_url, allow_secrets_in_arguments=False)
    person = BrowserPerson(browser, api_key, secret)
    async with Client(build_server(settings)) as client:
        pending = await client.call_tool("store_credential", {"name": "handed-over"})
        assert not pending.is_error, text_of(pending)
        data = pending.structured_content
        assert data["status"] == "pending" and data["credential"] is None
        link = data["entry_url"]
        assert link in text_of(pending) and "list_credentials" in text_of(pending)
        assert "never in this chat" in text_of(pending)
        shown = await person.enter(link)  # the agent handed the link over; the person uses it
        assert "Stored credential 'handed-over'" in shown and account.account_number in shown
        listed = await client.call_tool("list_credentials", {})
        assert [c["name"] for c in listed.structured_content["credentials"]] == ["handed-over"]
        got = await client.call_tool("alpaca_get_account", {})
        assert got.structured_content["account"]["account_number"] == account.account_number

        # Replacing the keys goes the same way.
        new_key, new_secret = key_id_marker(), secret_marker()
        renewed = simulator.new_account(api_key=new_key, secret_key=new_secret)
        replacing = await client.call_tool(
            "update_credential", {"credential": "handed-over", "replace_keys": True}
        )
        assert replacing.structured_content["status"] == "pending", text_of(replacing)
        # The same person, in the same tab, with the new pair.
        shown = await person.enter(replacing.structured_content["entry_url"], keys=(new_key, new_secret))
        assert "Replaced the keys of credential 'handed-over'" in shown
        got = await client.call_tool("alpaca_get_account", {})
        assert got.structured_content["account"]["account_number"] == renewed.account_number
    await person.close()
    log_text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert_nowhere(
        [api_key, secret, new_key, new_secret],
        dump(pending, listed, got, replacing),
        log_text,
        "\n".join(person.urls),
    )


async def test_refused_keys_tell_the_person_why_and_the_agent_only_in_general_terms(
    tmp_path: Path, simulator: Any, browser: Any
) -> None:
    wrong_key, wrong_secret = key_id_marker(), secret_marker()  # no such account at "Alpaca"
    settings = make_settings(tmp_path / "data", simulator.base_url, allow_secrets_in_arguments=False)
    urls: asyncio.Queue[str] = asyncio.Queue()
    seen: list[str] = []

    async def on_elicitation(_context: Any, params: Any) -> ElicitResult:
        await urls.put(params.url)
        return ElicitResult(action="accept")

    async def three_attempts() -> None:
        url = await urls.get()
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(url)
        for _ in range(3):
            await page.get_by_label("API key id").fill(wrong_key)
            await page.get_by_label("Secret key").fill(wrong_secret)
            async with page.expect_navigation():
                await page.get_by_role("button", name="Check with Alpaca and store").click()
            seen.append(await page.inner_text("main"))
        await context.close()

    async with Client(build_server(settings), elicitation_callback=on_elicitation) as client:
        attempts = asyncio.create_task(three_attempts())
        result = await client.call_tool("store_credential", {"name": "typo"})
        await attempts
        listed = await client.call_tool("list_credentials", {})
    # The person is told exactly what happened, and that the link is used up after the third try.
    assert all("Alpaca refused this key pair" in text and "401" in text for text in seen), seen
    assert "2 more attempt" in seen[0] and "used up" in seen[2]
    # The agent only hears that it failed and why in general terms.
    assert result.is_error
    said = text_of(result)
    assert "Alpaca did not accept the key pair that was entered" in said and "Nothing was stored" in said
    assert "401" not in said
    assert listed.structured_content["credentials"] == []
    assert_nowhere([wrong_key, wrong_secret], dump(result), "\n".join(seen))


async def test_stdio_listener_refuses_a_foreign_host(tmp_path: Path, simulator: Any) -> None:
    """Attack stopped: DNS rebinding against the loopback listener (a page under another name)."""
    import httpx2

    settings = make_settings(tmp_path / "data", simulator.base_url, allow_secrets_in_arguments=False)
    async with Client(build_server(settings)) as client:
        pending = await client.call_tool("store_credential", {"name": "x"})
        link = pending.structured_content["entry_url"]
        async with httpx2.AsyncClient() as http:
            foreign = await http.get(link, headers={"Host": "attacker.example:80"})
            assert foreign.status_code == 421
            assert (await http.get(link)).status_code == 200


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip("stdio subprocess tests run on POSIX")
