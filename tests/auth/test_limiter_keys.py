"""Issue #10, point 6: request budgets are keyed by ids the server resolved, and waits for them are capped.

Over the wire: the real HTTP server on loopback, two users with their own tokens, the simulator as Alpaca.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.mcp_server import text_of
from tests.multiuser.conftest import Deployment
from tests.multiuser.harness import connect, http_settings, serve_http


# The limiter is per process and touches no table: one backend is enough.
@pytest.mark.parametrize("deployment_urls", ["sqlite"], indirect=True)
async def test_key_check_named_after_another_users_credential_id_does_not_spend_its_budget(
    deployment: Deployment, tmp_path: Path, simulator: Any
) -> None:
    """Attack stopped: the key-check limiter was keyed by the `name` argument, before any check, so Mallory,
    storing keys under the name of Alice's credential id, spent Alice's Alpaca budget; Alice's calls then
    waited without bound. Now each budget is keyed by ids, and a full budget is refused after a capped wait."""
    alice = await deployment.user_with_token("alice")
    mallory = await deployment.user_with_token("mallory")
    alice_account, mallory_account = simulator.new_account(), simulator.new_account()
    settings = http_settings(
        tmp_path / "data",
        deployment.server_url,
        simulator.base_url,
        rate_limit_per_minute=2,
        rate_limit_max_wait=0.5,
    )
    with serve_http(settings) as url:
        async with connect(url, alice) as client:
            stored = await client.call_tool(
                "store_credential",
                {"name": "main", "api_key": alice_account.api_key, "secret_key": alice_account.secret_key,
                 "validate": False},
            )  # fmt: skip
            assert not stored.is_error, text_of(stored)
            assert stored.structured_content is not None
            alice_credential_id = stored.structured_content["credential"]["id"]

        async with connect(url, mallory) as client:
            keys_named_like_alice = {
                "name": alice_credential_id,
                "api_key": mallory_account.api_key,
                "secret_key": mallory_account.secret_key,
            }
            answers = [  # one more key check than the budget holds
                await asyncio.wait_for(
                    client.call_tool("store_credential", keys_named_like_alice), timeout=10
                )
                for _ in range(3)
            ]
        # Mallory's own budget ran out: a clear refusal after the capped wait, naming both settings.
        refused = text_of(answers[-1])
        assert answers[-1].is_error
        assert (
            "ALPACA_VAULT_RATE_LIMIT_MAX_WAIT" in refused and "ALPACA_VAULT_RATE_LIMIT_PER_MINUTE" in refused
        )
        assert "nothing was sent to Alpaca" in refused

        # Alice's budget is untouched: two calls at once, no wait, no refusal.
        async with connect(url, alice) as client:
            for _ in range(2):
                result = await asyncio.wait_for(client.call_tool("alpaca_get_account", {}), timeout=5)
                assert not result.is_error, text_of(result)
            # ...and her own third call within the minute meets the cap, not an endless wait.
            capped = await asyncio.wait_for(client.call_tool("alpaca_get_account", {}), timeout=5)
            assert capped.is_error and "had no room within 0.5 s" in text_of(capped)
