"""Bearer-token auth on the Streamable HTTP transport, checked on the wire.

Missing, malformed, unknown, expired and revoked tokens each get 401 with a
``WWW-Authenticate: Bearer`` challenge whose error_description says which and
how to get a token; no OAuth metadata is advertised (there is no authorization
server); a valid token from a foreign Host or Origin is refused too.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.shared.exceptions import MCPError
from sqlalchemy import update

from alpaca_vault.accounts import generate_token
from alpaca_vault.db.models import ApiToken, utcnow
from alpaca_vault.db.rls import maintenance_session
from alpaca_vault.tools.gate import GateHooks, ToolCall
from tests.fixtures.mcp_server import text_of
from tests.multiuser.conftest import Deployment, opened_deployment, shared_deployment_urls
from tests.multiuser.harness import connect, http_settings, serve_http

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "auth-test", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


# One database and one server per backend for the whole module: each test makes its own user and
# tokens (``alice`` is a fresh name per test), so none sees another's, and the module pays for the
# server's start and a PostgreSQL database twice instead of 32 times.
@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def deployment_urls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str, str]:
    return shared_deployment_urls(request, tmp_path_factory.mktemp("http-auth"))


@pytest.fixture(scope="module")
async def deployment(deployment_urls: tuple[str, str, str]) -> AsyncIterator[Deployment]:
    async with opened_deployment(deployment_urls) as opened:
        yield opened


@pytest.fixture(scope="module")
def server(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory, simulator: Any) -> Iterator[str]:
    settings = http_settings(tmp_path_factory.mktemp("data"), deployment.server_url, simulator.base_url)
    with serve_http(settings) as url:
        yield url


@pytest.fixture
def alice() -> str:
    return f"alice-{uuid.uuid4().hex[:8]}"


def post(url: str, token: str | None = None, **headers: str) -> httpx2.Response:
    sent = dict(ACCEPT, **headers)
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return httpx2.post(url, json=INITIALIZE, headers=sent, timeout=10)


REASONS = {
    "missing": "No bearer token was sent.",
    "unknown": "This bearer token is not valid for this server.",
    "expired": "This bearer token has expired.",
    "revoked": "This bearer token was revoked.",
    "wrong_kind": "This is a console sign-in token (avc_...)",
}


def assert_challenged(response: httpx2.Response, url: str, reason: str = "unknown") -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="alpaca-vault"')
    # No pointer to OAuth metadata: there is no authorization server to send a client to.
    assert "resource_metadata" not in challenge
    body = response.json()
    assert body["error_description"].startswith(REASONS[reason])
    assert "`alpaca-vault tokens create --user NAME`" in body["error_description"]
    assert f'error_description="{body["error_description"]}"' in challenge
    if reason == "missing":  # RFC 6750 3.1: no error code when no credentials were sent
        assert "error=" not in challenge.replace("error_description", "")
    else:
        assert 'error="invalid_token"' in challenge and body["error"] == "invalid_token"


async def test_a_valid_token_is_accepted(deployment: Deployment, server: str, alice: str) -> None:
    token = await deployment.user_with_token(alice)
    response = post(server, token)
    assert response.status_code == 200, response.text
    assert "serverInfo" in response.text


@pytest.mark.parametrize(
    "token",
    [None, "avt_", "not-a-token", generate_token(), generate_token()[:-1], "avt_" + "A" * 43],
    ids=["missing", "bare-prefix", "malformed", "unknown", "truncated", "forged"],
)
async def test_missing_or_wrong_tokens_get_401(
    deployment: Deployment, server: str, token: str | None, alice: str
) -> None:
    await deployment.user_with_token(alice)
    assert_challenged(post(server, token), server, "missing" if token is None else "unknown")


async def test_a_console_sign_in_token_opens_no_mcp_connection(
    deployment: Deployment, server: str, alice: str
) -> None:
    """A person's console token (``avc_``) is for the console's sign-in form only: an MCP client that is
    handed one is refused, and told which kind it needs."""
    console_token = await deployment.user_with_token(alice, kind="console")
    assert console_token.startswith("avc_")
    assert_challenged(post(server, console_token), server, "wrong_kind")
    assert "needs an agent token (avt_...)" in post(server, console_token).json()["error_description"]


async def test_probing_learns_nothing_a_forged_token_and_garbage_get_the_same_answer(
    deployment: Deployment, server: str, alice: str
) -> None:
    # Token guessing: an attacker must not learn whether a string is well-formed or close to a real one.
    real = await deployment.user_with_token(alice)
    one_off = real[:-1] + (
        "B" if real.endswith("A") else "A"
    )  # differs from the real token in its last character
    answers = {
        (r.status_code, r.headers["www-authenticate"], r.text)
        for r in (post(server, t) for t in ("garbage", generate_token(), one_off, "avt_" + "A" * 43))
    }
    assert len(answers) == 1


async def test_a_non_bearer_scheme_gets_401(deployment: Deployment, server: str, alice: str) -> None:
    token = await deployment.user_with_token(alice)
    assert_challenged(post(server, Authorization=f"Basic {token}"), server, "missing")


async def test_an_expired_token_gets_401(deployment: Deployment, server: str, alice: str) -> None:
    issued_token = await deployment.user_with_token(alice, expires_in=timedelta(days=1))
    assert post(server, issued_token).status_code == 200
    (record,) = await deployment.admin.list_tokens(alice)
    async with maintenance_session(deployment.admin_db) as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == record.id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    assert_challenged(post(server, issued_token), server, "expired")


async def test_a_revoked_token_gets_401_from_the_next_request(
    deployment: Deployment, server: str, alice: str
) -> None:
    token = await deployment.user_with_token(alice)
    async with connect(server, token) as client:
        assert not (await client.call_tool("list_credentials", {})).is_error
        (record,) = await deployment.admin.list_tokens(alice)
        await deployment.admin.revoke_token(str(record.id))
        with pytest.raises(MCPError):
            await client.call_tool("list_credentials", {})
    assert_challenged(post(server, token), server, "revoked")


async def test_removing_a_user_refuses_its_tokens(deployment: Deployment, server: str, alice: str) -> None:
    token = await deployment.user_with_token(alice)
    assert post(server, token).status_code == 200
    await deployment.admin.remove_user(alice)
    assert_challenged(post(server, token), server)


async def test_a_foreign_host_or_origin_is_refused_even_with_a_valid_token(
    deployment: Deployment, server: str, alice: str
) -> None:
    token = await deployment.user_with_token(alice)
    port = server.split(":")[2].split("/")[0]
    assert post(server, token, Host=f"attacker.example:{port}").status_code == 421
    assert post(server, token, Origin="http://attacker.example").status_code == 403
    assert post(server, token, Origin=f"http://127.0.0.1:{port}").status_code == 200


async def test_a_tokenless_client_finds_no_oauth_dead_end(server: str) -> None:
    # Until OAuth exists nothing advertises it: a client following discovery finds no authorization
    # server to try (and fail with a 404 at); the 401 itself says how to get a token.
    origin = server.removesuffix("/mcp")
    for path in (
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/register",
        "/authorize",
    ):
        assert httpx2.get(f"{origin}{path}", timeout=10).status_code == 404, path
    assert_challenged(post(server), server, "missing")


async def test_last_used_is_recorded_at_most_once_a_minute(
    deployment: Deployment, server: str, alice: str
) -> None:
    token = await deployment.user_with_token(alice)
    (fresh,) = await deployment.admin.list_tokens(alice)
    assert fresh.last_used_at is None
    async with connect(server, token) as client:
        result = await client.call_tool("list_credentials", {})
        assert not result.is_error, text_of(result)
        (first,) = await deployment.admin.list_tokens(alice)
        assert first.last_used_at is not None
        for _ in range(3):
            await client.call_tool("list_credentials", {})
    (later,) = await deployment.admin.list_tokens(alice)
    assert later.last_used_at == first.last_used_at


async def test_the_gate_knows_the_token_a_call_came_with(
    deployment: Deployment, tmp_path: Path, simulator: Any
) -> None:
    """Every call's actor is its bearer token, by id and name (what the audit trail will record)."""
    seen: list[ToolCall] = []
    hooks = GateHooks()

    async def watch(call: ToolCall) -> None:
        seen.append(call)

    hooks.add_before_send(watch)
    await deployment.admin.add_user("carol")
    issued = await deployment.admin.create_token("carol", name="laptop-agent")
    settings = http_settings(tmp_path / "data", deployment.server_url, simulator.base_url)
    with serve_http(settings, gate_hooks=hooks) as url:
        async with connect(url, issued.token.get_secret_value()) as client:
            listed = await client.call_tool("list_credentials", {})
            assert not listed.is_error, text_of(listed)
    assert len(seen) == 1
    actor = seen[0].actor
    assert actor.kind == "token" and actor.token_id == issued.record.id and actor.token_name == "laptop-agent"
    users = {u.name: u.id for u in await deployment.admin.list_users()}
    assert seen[0].user_id == users["carol"]
