"""Load: 10 users, 100 concurrent tool calls over HTTP, every result belongs to its caller.

bench/multiuser.py measures the full size (20 users, 200 calls at a time); the suite keeps one
that still has every user's calls in flight together with everyone else's.

Each user has a token and a credential for its own simulator account. All
calls are in flight at once (one MCP session per user, ten calls each, both
credential listings and Alpaca calls that unseal the caller's keys); every
answer must name the caller's own credential and account, and none may fail.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.fixtures.mcp_server import text_of, wire
from tests.multiuser.conftest import Deployment
from tests.multiuser.harness import connect, http_settings, serve_http

USERS = 10
CALLS_PER_USER = 10


@pytest.mark.timeout(180)
# PostgreSQL, the multi-user backend, as the application role; stateful, and stateless as replicas run.
# (Embedded SQLite serializes writers: see docs/deployment.md on when to move to PostgreSQL.)
@pytest.mark.parametrize("deployment_urls", ["postgres"], indirect=True)
@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
async def test_concurrent_calls_from_many_users_each_get_their_own_data(
    deployment: Deployment, tmp_path: Path, simulator: Any, stateless: bool
) -> None:
    names = [f"user{n:02d}" for n in range(USERS)]
    tokens = {name: await deployment.user_with_token(name) for name in names}
    accounts = {name: simulator.new_account() for name in names}
    settings = http_settings(tmp_path / "data", deployment.server_url, simulator.base_url)
    with serve_http(settings, stateless=stateless) as url:
        async with AsyncExitStack() as stack:
            clients: dict[str, Client] = {
                name: await stack.enter_async_context(connect(url, tokens[name])) for name in names
            }
            stored = await asyncio.gather(
                *(
                    clients[name].call_tool(
                        "store_credential",
                        {
                            "name": f"{name}-paper",
                            "api_key": accounts[name].api_key,
                            "secret_key": accounts[name].secret_key,
                        },
                    )
                    for name in names
                )
            )
            assert [r.is_error for r in stored] == [False] * USERS, [text_of(r) for r in stored if r.is_error]

            async def one_call(name: str, n: int) -> tuple[str, str, Any]:
                tool = "alpaca_get_account" if n % 2 else "list_credentials"
                return name, tool, await clients[name].call_tool(tool, {})

            results = await asyncio.gather(
                *(one_call(name, n) for name in names for n in range(CALLS_PER_USER))
            )

    assert len(results) == USERS * CALLS_PER_USER
    errors = [(name, tool, text_of(r)) for name, tool, r in results if r.is_error]
    assert errors == []
    for name, tool, result in results:
        body = wire(result)["structuredContent"]
        if tool == "list_credentials":
            assert [c["name"] for c in body["credentials"]] == [f"{name}-paper"]
        else:
            assert body["credential"] == f"{name}-paper"
            assert body["account"]["account_number"] == accounts[name].account_number
