"""Issue #10, point 9: a slow place-order call ends in time, with the client_order_id to look up and reuse.

The attack (an accident as often as not): Alpaca is slow, the MCP client gives up on the tool call and the
agent retries; without the id of the first attempt, the server mints a new one and a second order results.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.fixtures.mcp_server import make_settings, paper_session, text_of

ORDER = {"symbol": "AAPL", "side": "buy", "qty": "1", "type": "market"}
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def test_slow_order_call_answers_in_time_with_its_id_and_a_retry_with_it_places_no_second_order(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    """Attack stopped: a client that gives up on a slow alpaca_place_order and retries got a second order."""
    settings = make_settings(tmp_path / "data", simulator.base_url, http_timeout=10.0, order_deadline=1.0)
    async with paper_session(settings, sim_account) as client:
        # Alpaca takes the order, then its answer takes 4 s: longer than the call may take.
        simulator.set_fault(match="POST /v2/orders", lost_response="hang", latency_ms=4000, count=1)
        started = time.monotonic()
        slow = await client.call_tool("alpaca_place_order", ORDER)
        elapsed = time.monotonic() - started
        text = text_of(slow)
        assert slow.is_error, text
        assert elapsed < 3.5, f"the call took {elapsed:.1f} s, past its 1 s deadline"
        assert "ALPACA_VAULT_ORDER_DEADLINE" in text and "unknown" in text
        client_order_id = re.search(rf"client_order_id=({_UUID})", text)
        intent_id = re.search(rf"order intent ({_UUID}) is recorded", text)
        assert client_order_id and intent_id, text
        cid = client_order_id.group(1)

        # The durable intent holds that id (the reconciler settles it later) ...
        events = await client.call_tool("list_audit_events", {"action": "order.intent"})
        assert events.structured_content is not None, text_of(events)
        recorded = [e for e in events.structured_content["events"] if cid in str(e.get("details"))]
        assert recorded, text_of(events)

        # ... and the retry the error asks for (same arguments, same id) finds the first order.
        retry = await client.call_tool("alpaca_place_order", {**ORDER, "client_order_id": cid})
        assert not retry.is_error, text_of(retry)
        assert retry.structured_content is not None
        assert retry.structured_content["order"]["client_order_id"] == cid

    orders = simulator.orders(sim_account.api_key)
    assert [o["client_order_id"] for o in orders] == [cid], orders


def test_place_order_description_says_a_retry_reuses_the_client_order_id() -> None:
    from mcp.server.mcpserver import MCPServer

    from alpaca_vault.tools.registry import register_tools

    row = register_tools(MCPServer(name="t"))["alpaca_place_order"]
    assert "A retry MUST reuse the id" in row.properties["client_order_id"]["description"]
