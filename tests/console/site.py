"""A running HTTP server (MCP + key entry page + console) with two users, for the page tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

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

    @property
    def origin(self) -> dict[str, str]:
        return {"Origin": self.base}

    def http(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(base_url=self.base, follow_redirects=False, timeout=30)

    async def entry_link(self, user: str, name: str, **arguments: Any) -> str:
        """A key entry link, the way an agent without elicitation gets one."""
        async with connect(self.mcp_url, self.tokens[user]) as client:
            result = await client.call_tool("store_credential", {"name": name, **arguments})
        assert not result.is_error, result
        return str(result.structured_content["entry_url"])

    async def call(self, user: str, tool: str, arguments: dict[str, Any]) -> Any:
        async with connect(self.mcp_url, self.tokens[user]) as client:
            return await client.call_tool(tool, arguments)

    async def sign_in(self, http: httpx2.AsyncClient, user: str) -> None:
        """Sign ``http`` in to the console by pasting the user's bearer token once."""
        form = await http.get("/console/sign-in")
        response = await http.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "token": self.tokens[user]},
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
        yield Site(re.sub(r"/mcp$", "", mcp_url), mcp_url, settings, deployment, tokens)
