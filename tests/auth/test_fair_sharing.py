"""Issue #10, points 2 and 3: one user (or one slow client) cannot lock the others out of the HTTP transport.

Everything runs on the wire: the real server under uvicorn on loopback, real tokens from the
database (SQLite and PostgreSQL), raw HTTP for the attacker, the SDK's Client for the victim.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.auth.test_http_auth import ACCEPT, INITIALIZE
from tests.fixtures.mcp_server import text_of
from tests.multiuser.conftest import Deployment
from tests.multiuser.harness import connect, http_settings, serve_http


def trickle_until_closed(sock: socket.socket, *, deadline: float) -> bool:
    """Send one header line every 0.2 s until the server hangs up (True) or the deadline passes (False)."""
    sock.settimeout(0.2)
    try:
        while time.monotonic() < deadline:
            sock.sendall(b"X-Slow: 1\r\n")
            try:
                if sock.recv(1024) == b"":
                    return True
            except TimeoutError:
                continue
        return False
    except OSError:  # reset or broken pipe: closed by the server
        return True
    finally:
        sock.close()


def open_session(url: str, token: str) -> httpx2.Response:
    return httpx2.post(
        url, json=INITIALIZE, headers=dict(ACCEPT, Authorization=f"Bearer {token}"), timeout=10
    )


async def test_session_hoarding_by_one_user_gets_429_for_that_user_only(
    deployment: Deployment, tmp_path: Path, simulator: Any
) -> None:
    """Attack stopped: a token holder opens sessions until the global cap, so every other user gets 503."""
    mallory = await deployment.user_with_token("mallory")
    mallory_second_token = (await deployment.admin.create_token("mallory")).token.get_secret_value()
    alice = await deployment.user_with_token("alice")
    settings = http_settings(
        tmp_path / "data", deployment.server_url, simulator.base_url, sessions_per_user=3
    )
    with serve_http(settings) as url:
        opened = [open_session(url, mallory) for _ in range(3)]
        assert [r.status_code for r in opened] == [200, 200, 200], [r.text for r in opened]
        # A fourth, even with another token of the same user: 429 naming the setting.
        for token in (mallory, mallory_second_token):
            refused = open_session(url, token)
            assert refused.status_code == 429, refused.text
            message = refused.json()["error"]["message"]
            assert "3 open MCP sessions" in message and "ALPACA_VAULT_SESSIONS_PER_USER" in message
        # Alice is not affected: she opens a session and calls a tool.
        async with connect(url, alice) as client:
            result = await client.call_tool("list_credentials", {})
            assert not result.is_error, text_of(result)
        # Mallory's existing sessions still work, and closing one frees a slot for her.
        session_id = opened[0].headers["mcp-session-id"]
        closed = httpx2.delete(
            url, headers={"Authorization": f"Bearer {mallory}", "Mcp-Session-Id": session_id}, timeout=10
        )
        assert closed.status_code < 300, closed.text
        assert open_session(url, mallory).status_code == 200


async def test_request_flood_by_one_user_gets_429_with_retry_after_for_that_user_only(
    deployment: Deployment, tmp_path: Path, simulator: Any
) -> None:
    """Attack stopped: one user sends requests as fast as it can and the others queue behind it."""
    mallory = await deployment.user_with_token("mallory")
    alice = await deployment.user_with_token("alice")
    settings = http_settings(
        tmp_path / "data", deployment.server_url, simulator.base_url, requests_per_minute=5
    )
    with serve_http(settings) as url:
        statuses = [open_session(url, mallory) for _ in range(8)]
        codes = [r.status_code for r in statuses]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3, codes
        limited = statuses[-1]
        assert int(limited.headers["retry-after"]) >= 1
        assert "ALPACA_VAULT_REQUESTS_PER_MINUTE" in limited.json()["error"]["message"]
        assert open_session(url, alice).status_code == 200  # her own bucket


def test_rate_state_stays_bounded_however_many_users_call() -> None:
    """Attack stopped: growing the limiter's table without bound (memory) by calling as many principals."""
    from alpaca_vault.server.limits import RequestRate  # here: the wire tests above must fail on old code

    rate = RequestRate(60, max_users=100)
    for n in range(5_000):
        rate.take(f"user-{n}")
    assert len(rate) == 100
    assert rate.take("user-4999") is None  # the most recent survive


@pytest.mark.parametrize("deployment_urls", ["sqlite"], indirect=True)
async def test_slowloris_headers_are_cut_off_and_do_not_starve_others(
    deployment: Deployment, tmp_path: Path, simulator: Any
) -> None:
    """Attack stopped: clients trickle request headers to hold connections (and concurrency slots) forever."""
    alice = await deployment.user_with_token("alice")
    settings = http_settings(
        tmp_path / "data",
        deployment.server_url,
        simulator.base_url,
        http_header_timeout=1.0,
        http_limit_concurrency=8,
    )
    with serve_http(settings) as url:
        port = int(url.split(":")[2].split("/")[0])
        slow = []
        for _ in range(8):  # as many as the concurrency limit
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(sock)
        started = time.monotonic()
        closed = sum(trickle_until_closed(sock, deadline=started + 5) for sock in slow)
        assert closed == 8
        assert time.monotonic() - started < 5, "slow headers held their connections past the deadline"
        assert open_session(url, alice).status_code == 200
