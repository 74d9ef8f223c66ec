"""The registry refuses a malformed row at start-up, and derives secret arguments from input schemas."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

import pytest
from mcp.server.mcpserver import Context, MCPServer
from pydantic import SecretStr

from alpaca_vault.guard import Intent
from alpaca_vault.tools import account, trading
from alpaca_vault.tools.registry import TOOLS, MalformedToolSpec, ToolSpec, register_tools

ROWS = {spec.name: spec for spec in TOOLS}


async def undocumented(ctx: Context[Any, Any]) -> None:
    pass


async def no_context(symbol: str) -> None:
    """Has no Context parameter."""


def not_async(ctx: Context[Any, Any]) -> None:
    """Not a coroutine function."""


MALFORMED = [
    (dataclasses.replace(ROWS["alpaca_get_account"], risk="write"), "disagree"),
    (dataclasses.replace(ROWS["alpaca_place_order"], risk="read"), "disagree"),
    (dataclasses.replace(ROWS["alpaca_place_order"], calls_alpaca=False), "calls_alpaca must be True"),
    (dataclasses.replace(ROWS["alpaca_place_order"], intent="place an order"), "must be an Intent"),
    (dataclasses.replace(ROWS["alpaca_place_order"], hints={"stop": "stop_loss_price"}), "names no argument"),
    (dataclasses.replace(ROWS["alpaca_place_order"], hints={"qty": "notional"}), "is a real argument"),
    (dataclasses.replace(ROWS["alpaca_get_account"], name="Get-Account"), "lower-case"),
    (dataclasses.replace(ROWS["alpaca_get_account"], toolset="admin"), "unknown toolset"),
    (dataclasses.replace(ROWS["alpaca_get_account"], fn=undocumented), "docstring"),
    (dataclasses.replace(ROWS["alpaca_get_account"], fn=no_context), "Context parameter"),
    (dataclasses.replace(ROWS["alpaca_get_account"], fn=not_async), "must be async"),
]


@pytest.mark.parametrize(("row", "problem"), MALFORMED, ids=[problem for _, problem in MALFORMED])
def test_a_malformed_row_stops_registration(row: ToolSpec, problem: str) -> None:
    server: MCPServer[Any] = MCPServer(name="t")
    rows = [*TOOLS[:3], row]  # the bad row is checked even when its toolset is switched off
    with pytest.raises(MalformedToolSpec, match=problem) as caught:
        register_tools(server, frozenset({"credentials"}), rows=rows)
    assert repr(row.name) in str(caught.value)
    assert server._tool_manager.list_tools() == []  # refused before anything was registered


def test_duplicate_names_stop_registration() -> None:
    server: MCPServer[Any] = MCPServer(name="t")
    with pytest.raises(MalformedToolSpec, match="repeated: alpaca_get_account"):
        register_tools(server, rows=[*TOOLS, ROWS["alpaca_get_account"]])


def test_the_real_table_registers_every_tool() -> None:
    server: MCPServer[Any] = MCPServer(name="t")
    table = register_tools(server)
    assert set(table) == set(ROWS)


def _declared_secret(fn: Any) -> set[str]:
    hints = typing.get_type_hints(fn, include_extras=True)
    secret = set()
    for name in inspect.signature(fn).parameters:
        if "SecretStr" in repr(hints.get(name)):
            secret.add(name)
    return secret


def test_secret_arguments_come_from_the_input_schemas() -> None:
    table = register_tools(MCPServer(name="t"))
    assert table.secret_arguments("store_credential") == {"api_key", "secret_key"}
    assert table.secret_arguments("update_credential") == {"api_key", "secret_key"}  # SecretStr | None
    for name, tool in table.items():
        # Whatever is a SecretStr in the signature is a secret argument, so a new one is covered at once.
        assert tool.secret_arguments == _declared_secret(tool.spec.fn), name


def test_a_new_secret_argument_is_found_without_a_list() -> None:
    async def alpaca_connect_broker(ctx: Context[Any, Any], passphrase: SecretStr, label: str = "x") -> None:
        """A made-up tool with a secret argument no list names."""

    row = ToolSpec(
        "alpaca_connect_broker", alpaca_connect_broker, "Connect", "account", Intent.CONFIGURE_ACCOUNT,
        "write", False, True,
    )  # fmt: skip
    table = register_tools(MCPServer(name="t"), rows=[row])
    assert table.secret_arguments("alpaca_connect_broker") == {"passphrase"}


def test_hints_are_declared_on_rows_not_shared() -> None:
    # An "id" on an asset lookup is not an order id: only tools that take order_id hint at it.
    assert "id" in ROWS["alpaca_cancel_order"].hints
    assert "id" not in ROWS["alpaca_get_asset"].hints
    assert ROWS["alpaca_place_order"].fn is trading.alpaca_place_order
    assert ROWS["alpaca_get_account"].fn is account.alpaca_get_account
