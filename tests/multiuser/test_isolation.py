"""Two users, two tokens, one server over Streamable HTTP: neither can reach the other's credentials.

Every attempt by A on B's credential, by name or by id, must answer exactly as
a credential that does not exist (so ids and names cannot be probed), and B's
credential must be untouched afterwards. Run on SQLite (application filters)
and on PostgreSQL as the application role (filters + row-level security), in
stateful and stateless HTTP mode: the bearer token's user is the principal of
every tool call, whichever task the SDK runs the handler in.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.fixtures.mcp_server import text_of, wire
from tests.multiuser.conftest import Deployment
from tests.multiuser.harness import connect, http_settings, serve_http

GHOST_NAME = "no-such-credential"
GHOST_ID = str(uuid.UUID(int=0x5EED))

# (tool, extra arguments) for everything that takes a credential reference.
ATTEMPTS: list[tuple[str, dict[str, Any]]] = [
    ("alpaca_get_account", {}),
    ("validate_credential", {}),
    ("update_credential", {"new_name": "stolen"}),
    ("update_credential", {"is_active": False}),
    ("delete_credential", {}),
]


async def _store(client: Client, name: str, account: Any) -> dict[str, Any]:
    result = await client.call_tool(
        "store_credential", {"name": name, "api_key": account.api_key, "secret_key": account.secret_key}
    )
    assert not result.is_error, text_of(result)
    credential: dict[str, Any] = wire(result)["structuredContent"]["credential"]
    return credential


async def _names(client: Client) -> list[str]:
    result = await client.call_tool("list_credentials", {})
    assert not result.is_error, text_of(result)
    return [c["name"] for c in wire(result)["structuredContent"]["credentials"]]


def _as_seen(result: Any, ref: str, placeholder: str) -> dict[str, Any]:
    """The whole wire result with the reference itself replaced, for byte-for-byte comparison."""
    return {"is_error": result.is_error, "text": text_of(result).replace(ref, placeholder)}


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
async def test_a_cannot_list_use_validate_update_or_delete_bs_credential(
    deployment: Deployment, tmp_path: Path, simulator: Any, stateless: bool
) -> None:
    token_a = await deployment.user_with_token("alice")
    token_b = await deployment.user_with_token("bob")
    settings = http_settings(tmp_path / "data", deployment.server_url, simulator.base_url)
    with serve_http(settings, stateless=stateless) as url:
        async with connect(url, token_a) as alice, connect(url, token_b) as bob:
            await _store(alice, "alice-main", simulator.new_account())
            bobs = await _store(bob, "bob-main", simulator.new_account())
            assert await _names(alice) == ["alice-main"]
            assert await _names(bob) == ["bob-main"]

            for tool, extra in ATTEMPTS:
                for ref, ghost in ((bobs["name"], GHOST_NAME), (bobs["id"], GHOST_ID)):
                    attempt = await alice.call_tool(tool, {"credential": ref, **extra})
                    control = await alice.call_tool(tool, {"credential": ghost, **extra})
                    assert attempt.is_error, f"{tool}({ref}) succeeded for another user: {text_of(attempt)}"
                    assert _as_seen(attempt, ref, "<ref>") == _as_seen(control, ghost, "<ref>"), tool
                    assert "bob-main" not in _as_seen(attempt, ref, "<ref>")["text"]

            # B's credential is exactly as before, and still works for B.
            assert await _names(bob) == ["bob-main"]
            listed = wire(await bob.call_tool("list_credentials", {}))["structuredContent"]["credentials"][0]
            assert listed["is_active"] is True and listed["id"] == bobs["id"]
            account = await bob.call_tool("alpaca_get_account", {"credential": "bob-main"})
            assert not account.is_error, text_of(account)
            assert await _names(alice) == ["alice-main"]


async def test_each_token_is_its_own_users_principal_on_one_connection_pool(
    deployment: Deployment, tmp_path: Path, simulator: Any
) -> None:
    """Interleaved calls from two users on the same server never see each other's user."""
    token_a = await deployment.user_with_token("alice")
    token_b = await deployment.user_with_token("bob")
    settings = http_settings(tmp_path / "data", deployment.server_url, simulator.base_url)
    with serve_http(settings, stateless=True) as url:
        async with connect(url, token_a) as alice, connect(url, token_b) as bob:
            for i in range(3):
                await _store(alice, f"a-{i}", simulator.new_account())
                await _store(bob, f"b-{i}", simulator.new_account())
            assert await _names(alice) == ["a-0", "a-1", "a-2"]
            assert await _names(bob) == ["b-0", "b-1", "b-2"]
