"""Issue #10, point 5: an Alpaca error message is scrubbed of the call's keys *before* it is cut.

Attack stopped: a hostile (or careless) upstream echoes the secret key in its error message so that
the 500-character cut falls inside it. Cut first, scrub second: the whole key no longer matches,
and its first part reached the agent. The upstream here is a real HTTP server on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.broker import AlpacaClient, AlpacaKeys, AlpacaRejected
from alpaca_vault.simulator.runner import serve_in_thread

from .conftest import FAST_RETRY

SECRET = "Zq8wVn3RtY6uPa1sDf4gHj7kLx0cBm2NvQe5WrTy"  # 40 characters, unique to this test
API_KEY = "PKECHOECHOECHOECHO01"


def _echoing_upstream(prefix_length: int) -> Starlette:
    """Answers every request 422 with a message that repeats the secret key it was sent."""

    async def echo(request: Request) -> Response:
        sent = request.headers.get("apca-api-secret-key", "")
        pieces = {
            "code": 42210000,
            "message": "x" * prefix_length + sent + " (the key above was rejected)",
        }
        return Response(json.dumps(pieces), status_code=422, media_type="application/json")

    return Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST", "DELETE", "PATCH"])])


@pytest.fixture
def echo_url() -> Iterator[str]:
    # The cut at 500 lands 12 characters into the secret.
    with serve_in_thread(_echoing_upstream(488)) as url:
        yield url


async def test_secret_echoed_across_the_cut_never_reaches_the_error(echo_url: str) -> None:
    client = AlpacaClient(
        paper_url=echo_url, live_url=echo_url, data_url=echo_url, timeout=2.0, retry=FAST_RETRY
    )
    keys = AlpacaKeys(
        api_key=SecretStr(API_KEY), secret_key=SecretStr(SECRET), environment="paper", limiter_key="cred-1"
    )
    try:
        with pytest.raises(AlpacaRejected) as raised:
            await client.get_account(keys)
    finally:
        await client.aclose()
    message = raised.value.message
    assert SECRET[:8] not in message and SECRET[:12] not in message
    assert "[REDACTED]" in message
    assert len(message) <= 500


def test_any_run_of_eight_characters_from_a_secret_is_redacted() -> None:
    """Attack stopped: an upstream that echoes only a fragment (or a reversed-cut half) of a key."""
    from alpaca_vault.secret_text import REDACTED, redact_secret_runs

    text = f"head {SECRET[5:13]} middle {SECRET[-9:]} tail {SECRET[:7]}"
    cleaned = redact_secret_runs(text, [SECRET])
    assert cleaned == f"head {REDACTED} middle {REDACTED} tail {SECRET[:7]}"  # 7 characters stay
    assert redact_secret_runs("nothing secret here", [SECRET]) == "nothing secret here"
