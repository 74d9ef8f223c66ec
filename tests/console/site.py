"""A running HTTP server (MCP + key entry page + console) with two users, for the page tests.

An agent's calls go over Streamable HTTP with the SDK's ``Client``. Opening a client costs an
``initialize`` and a ``tools/list`` (the SDK validates results against the listed output schemas),
several times the call itself; so a site opened by ``running_site`` or ``site_on`` keeps one client
per user it was made with for the whole ``async with`` (entered and left in the test's own task, as
the client's task group requires). Users added later (a token made in the console) connect afresh on
every call, so a revoked token is refused at the door, not only mid-session.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client

from alpaca_vault.server.runner import serve_http_in_thread
from alpaca_vault.server.settings import Settings
from tests.console.helpers import csrf_of
from tests.multiuser.harness import connect, http_settings


@dataclass
class Site:
    base: str
    mcp_url: str
    settings: Settings
    deployment: Any
    tokens: dict[str, str]
    # Where kept clients live (``running_site`` sets it); None: every call connects afresh.
    agents: AsyncExitStack | None = None
    kept: frozenset[str] = frozenset()
    # The user name behind each key of ``tokens`` (a shared server gives every test fresh names).
    users: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Client] = field(default_factory=dict, repr=False)
    _console_tokens: dict[str, str] = field(default_factory=dict, repr=False)

    def user(self, role: str) -> str:
        return self.users.get(role, role)

    @property
    def origin(self) -> dict[str, str]:
        return {"Origin": self.base}

    def http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(base_url=self.base, follow_redirects=False, timeout=30)

    async def entry_link(self, user: str, name: str, **arguments: Any) -> str:
        """A key entry link, the way an agent without elicitation gets one."""
        result = await self.call(user, "store_credential", {"name": name, **arguments})
        assert not result.is_error, result
        return str(result.structured_content["entry_url"])

    async def call(self, user: str, tool: str, arguments: dict[str, Any]) -> Any:
        if self.agents is None or user not in self.kept:
            async with connect(self.mcp_url, self.tokens[user]) as client:
                return await client.call_tool(tool, arguments)
        if user not in self._clients:
            self._clients[user] = await self.agents.enter_async_context(
                connect(self.mcp_url, self.tokens[user])
            )
        return await self._clients[user].call_tool(tool, arguments)

    async def console_token(self, user: str) -> str:
        """The user's console sign-in token (``avc_``), made once per site with the CLI's ``--console``
        (its agent token, ``tokens[user]``, does not open the console)."""
        if user not in self._console_tokens:
            issued = await self.deployment.admin.create_token(self.user(user), name="console", kind="console")
            self._console_tokens[user] = issued.token.get_secret_value()
        return self._console_tokens[user]

    async def sign_in(self, http: httpx2.AsyncClient, user: str) -> None:
        """Sign ``http`` in to the console by pasting the user's console token once."""
        form = await http.get("/console/sign-in")
        response = await http.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "token": await self.console_token(user)},
            headers=self.origin,
        )
        assert response.status_code == 303, response.text
        assert "alpaca_vault_console" in http.cookies

    async def post_keys(
        self, http: httpx2.AsyncClient, link: str, api_key: str, secret: str
    ) -> httpx2.Response:
        page = await http.get(link)
        assert page.status_code == 200, page.text
        return await http.post(
            link,
            data={"csrf": csrf_of(page.text), "api_key": api_key, "secret_key": secret},
            headers=self.origin,
        )


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


@asynccontextmanager
async def running_site(
    deployment: Any,
    tmp_path: Path,
    simulator: Any,
    tokens: dict[str, str] | None = None,
    *,
    stateless: bool = False,
    **overrides: Any,
) -> AsyncIterator[Site]:
    tokens = tokens or {name: await deployment.user_with_token(name) for name in ("alice", "bob")}
    settings = http_settings(
        tmp_path, deployment.server_url, simulator.base_url, allow_secrets_in_arguments=False, **overrides
    )
    with serve_http_in_thread(settings, stateless=stateless) as mcp_url:
        async with _with_kept_clients(deployment, mcp_url, settings, tokens) as site:
            yield site  # the kept clients close before the server stops


@asynccontextmanager
async def site_on(deployment: Any, mcp_url: str, settings: Settings) -> AsyncIterator[Site]:
    """A site on a server already running (a module's): two fresh users, "alice" and "bob", under
    names no other test uses, and kept clients for them until the ``async with`` ends."""
    suffix = uuid.uuid4().hex[:8]
    users = {role: f"{role}-{suffix}" for role in ("alice", "bob")}
    tokens = {role: await deployment.user_with_token(name) for role, name in users.items()}
    async with _with_kept_clients(deployment, mcp_url, settings, tokens, users) as site:
        yield site


@asynccontextmanager
async def _with_kept_clients(
    deployment: Any,
    mcp_url: str,
    settings: Settings,
    tokens: dict[str, str],
    users: dict[str, str] | None = None,
) -> AsyncIterator[Site]:
    """A site whose users' MCP clients are kept (one per user) until the ``async with`` ends."""
    async with AsyncExitStack() as agents:
        yield Site(
            mcp_url.removesuffix("/mcp"),
            mcp_url,
            settings,
            deployment,
            tokens,
            agents,
            frozenset(tokens),
            users or {},
        )


def shared_server_fixtures(name: str) -> tuple[Any, Any, Any, Any]:
    """A module's fixtures (assign them to ``deployment_urls, deployment, server, fresh_site``): one
    database and one HTTP server per backend for the module, and per test a site with two fresh users
    (see ``site_on``), so no test sees another's credentials, links, tokens, sessions or events."""
    import pytest

    from tests.multiuser.conftest import opened_deployment, shared_deployment_urls

    @pytest.fixture(scope="module", params=["sqlite", "postgres"])
    def deployment_urls(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> tuple[str, str, str]:
        return shared_deployment_urls(request, tmp_path_factory.mktemp(name))

    @pytest.fixture(scope="module")
    async def deployment(deployment_urls: tuple[str, str, str]) -> AsyncIterator[Any]:
        async with opened_deployment(deployment_urls) as opened:
            yield opened

    @pytest.fixture(scope="module")
    def server(
        deployment: Any, tmp_path_factory: pytest.TempPathFactory, simulator: Any
    ) -> Iterator[tuple[str, Settings]]:
        settings = http_settings(
            tmp_path_factory.mktemp("data"),
            deployment.server_url,
            simulator.base_url,
            allow_secrets_in_arguments=False,
        )
        with serve_http_in_thread(settings) as mcp_url:
            yield mcp_url, settings

    @pytest.fixture
    def fresh_site(deployment: Any, server: tuple[str, Settings]) -> AbstractAsyncContextManager[Site]:
        """``async with fresh_site as site``: the module's server, two users of this test's own, and
        their agents' clients kept open for the test (entered and left in the test's own task)."""
        return site_on(deployment, *server)

    return deployment_urls, deployment, server, fresh_site
