"""Error texts that send the agent to a tool name tools that exist, with arguments they take."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from alpaca_vault.broker import AlpacaClient, AlpacaKeys, InvalidRequestError, OrderOutcomeUnknown
from alpaca_vault.tools.registry import TOOLS

_TOOLS = {spec.name: spec.fn for spec in TOOLS}
# A tool name, optionally followed by its arguments: alpaca_get_order(client_order_id='x').
_TOOL_CALL = re.compile(r"\b(alpaca_[a-z_]+)(?:\(([^)]*)\))?")


def _check_tool_names(text: str) -> list[str]:
    named = _TOOL_CALL.findall(text)
    assert named, f"no tool named in: {text}"
    for tool, arguments in named:
        assert tool in _TOOLS, f"{tool} is not an MCP tool (in: {text})"
        parameters = inspect.signature(_TOOLS[tool]).parameters
        for argument in filter(None, (a.split("=")[0].strip() for a in arguments.split(","))):
            assert argument in parameters, f"{tool} takes no {argument} (in: {text})"
    # Names of client methods mean nothing to an agent, which only sees the tools.
    assert not re.search(r"(?<!alpaca_)\b(get_order_by_client_id|list_orders|get_positions)\b", text)
    return [tool for tool, _ in named]


async def test_bad_order_id_error_names_real_tools(
    broker: AlpacaClient, keys: AlpacaKeys, sim_account: Any
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await broker.get_order(keys, "not-an-id")
    assert _check_tool_names(str(caught.value)) == ["alpaca_list_orders", "alpaca_get_order"]
    assert "alpaca_get_order(client_order_id=" in str(caught.value)


@pytest.mark.parametrize("client_order_id", ["mine-1", None])
def test_outcome_unknown_hint_names_real_tools(client_order_id: str | None) -> None:
    text = str(OrderOutcomeUnknown("The order request was sent", client_order_id=client_order_id))
    tools = _check_tool_names(text)
    if client_order_id is None:
        assert tools == ["alpaca_list_orders", "alpaca_get_positions"]
    else:
        assert tools == ["alpaca_get_order"] and "client_order_id='mine-1'" in text
