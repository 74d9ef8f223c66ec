"""One list of audit actions (db/audit_actions.py, re-exported by db.models): every action the trail records is a filter
``list_audit_events`` offers and accepts; the guard's refusals, policy changes,
approvals and locate requests once were not."""

from __future__ import annotations

import json
from pathlib import Path

from mcp import Client

from alpaca_vault.db.models import AUDIT_ACTIONS
from alpaca_vault.server.app import build_server
from tests.fixtures.mcp_server import make_settings, text_of


async def test_every_recorded_action_is_a_filter_the_audit_tool_accepts(tmp_path: Path) -> None:
    async with Client(build_server(make_settings(tmp_path, "http://127.0.0.1:9"))) as client:
        listed = await client.list_tools()
        (tool,) = [t for t in listed.tools if t.name == "list_audit_events"]
        schema = json.loads(tool.model_dump_json(by_alias=True, exclude_none=True))["inputSchema"]
        offered = schema["properties"]["action"]["enum"]  # optional: null is the last choice
        assert offered == [*AUDIT_ACTIONS, None]
        for action in ("guard.refused", "policy.change", "order.approval", "locate.request"):
            result = await client.call_tool("list_audit_events", {"action": action})
            assert not result.is_error, text_of(result)
            assert result.structured_content is not None and result.structured_content["events"] == []
