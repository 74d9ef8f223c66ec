"""The confirmation round trip on each protocol version, through the SDK's real Client (in-process).

A minimal server whose one tool asks for confirmation shows the mechanics on their own: form
elicitation mid-call (2025-11-25), the input-required flow (2026-07-28), and a client without the
capability. The full order path is tested in test_guard_protocol.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import ElicitResult

from alpaca_vault.guard.confirm import (
    Confirmation,
    ConfirmationNeeded,
    ConfirmationPending,
    ask_person,
    confirmation_middleware,
)


def _server(asked: list[str]) -> MCPServer:
    server = MCPServer(name="confirm-test", middleware=[confirmation_middleware])

    @server.tool()
    async def do_it(what: str) -> str:
        confirmation = Confirmation.bound_to(f"Buy 1 {what} on 'paper-1' (paper)?", "paper-1", what)
        try:
            answer = await ask_person(confirmation, credential="paper-1", environment="paper")
        except ConfirmationNeeded as exc:
            return f"needed: {exc}"
        except ConfirmationPending:
            asked.append(what)
            raise
        return f"{answer}: {what}"

    return server


def _answering(action: str, seen: list[str], content: dict[str, Any] | None = None) -> Any:
    async def callback(_ctx: Any, params: Any) -> ElicitResult:
        seen.append(params.message)
        return ElicitResult(action=action, content=content if action == "accept" else None)  # type: ignore[arg-type]

    return callback


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize(
    ("action", "content", "expected"),
    [("accept", {"confirm": True}, "accept"), ("decline", None, "decline"), ("cancel", None, "cancel"),
     ("accept", {"confirm": False}, "decline")],
)  # fmt: skip
async def test_the_person_answers_on_every_protocol(
    mode: str, action: str, content: dict[str, Any] | None, expected: str
) -> None:
    seen: list[str] = []
    asked: list[str] = []
    async with Client(
        _server(asked), mode=mode, elicitation_callback=_answering(action, seen, content)
    ) as client:  # type: ignore[arg-type]
        result = await client.call_tool("do_it", {"what": "AAPL"})
    assert _text(result) == f"{expected}: AAPL"
    assert seen == ["Buy 1 AAPL on 'paper-1' (paper)?"]
    # 2026-07-28: the first round went back to the client as an InputRequiredResult.
    assert asked == (["AAPL"] if mode == "2026-07-28" else [])


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_client_without_elicitation_is_told_a_person_must_confirm(mode: str) -> None:
    async with Client(_server([]), mode=mode) as client:  # type: ignore[arg-type]
        result = await client.call_tool("do_it", {"what": "AAPL"})
    assert _text(result).startswith("needed: A person must confirm this before it is sent")
