"""Issue #10: a small run of bench/fairness.py: one user floods, another's calls all succeed.

The full run (30 s, 200 calls) is `bench/fairness.py`; here a few seconds on the in-thread server.
Latency is reported by the bench, not asserted here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.fixtures.mcp_server import text_of
from tests.multiuser.conftest import Deployment
from tests.multiuser.harness import connect, http_settings, serve_http

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fairness.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fairness_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
@pytest.mark.parametrize("deployment_urls", ["sqlite"], indirect=True)
async def test_a_flooding_user_does_not_fail_another_users_calls(
    deployment: Deployment, tmp_path: Path, simulator: Any
) -> None:
    """Attack stopped: one token holder opens sessions and sends requests as fast as it can; the other
    users' calls fail (503 once the global session cap is reached) or queue behind it."""
    fairness = load_bench()
    mallory = await deployment.user_with_token("mallory")
    alice = await deployment.user_with_token("alice")
    settings = http_settings(
        tmp_path / "data",
        deployment.server_url,
        simulator.base_url,
        sessions_per_user=5,
        requests_per_minute=120,
    )
    account = simulator.new_account()
    with serve_http(settings) as url:
        async with connect(url, alice) as client:  # alice's ordinary calls include Alpaca calls
            stored = await client.call_tool(
                "store_credential",
                {"name": "paper", "api_key": account.api_key, "secret_key": account.secret_key},
            )
            assert not stored.is_error, text_of(stored)
        result = await fairness.run_fairness(url, mallory, alice, duration=3.0, calls=30, concurrency=4)
    assert result.victim_failures == []
    assert len(result.victim_latencies) == 30
    assert result.attacker_statuses[429] > 0, result.attacker_statuses  # the flood was limited, not absorbed
