"""Arguments a tool does not define are refused, never silently dropped.

Attack stopped: an agent sends Alpaca's own request shape (`take_profit: {...}`, `stop_loss: {...}`)
and gets a plain, unprotected market order because the unknown fields were ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client

from alpaca_vault.server.app import build_server
from alpaca_vault.server.runner import simulated_alpaca
from alpaca_vault.server.settings import Settings
from tests.fixtures.mcp_server import make_settings, paper_session, text_of


async def test_unknown_arguments_are_refused_with_the_names_to_use(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        result = await client.call_tool(
            "alpaca_place_order",
            {
                "symbol": "AMZN",
                "side": "buy",
                "qty": 1,
                "take_profit": {"limit_price": 999},
                "stop_loss": {"stop_price": 1},
                "tif": "gtc",
            },
        )
        assert result.is_error
        text = text_of(result)
        assert "Unknown argument(s) for alpaca_place_order: stop_loss, take_profit, tif" in text
        assert "take_profit -> take_profit_limit_price" in text and "tif -> time_in_force" in text
        assert "Nothing was done" in text
    assert simulator.orders(sim_account.api_key) == []


async def test_input_schemas_forbid_additional_properties(tmp_path: Path) -> None:
    async with Client(build_server(make_settings(tmp_path, "http://127.0.0.1:9"))) as client:
        tools = (await client.list_tools()).tools
    assert tools and all(tool.input_schema.get("additionalProperties") is False for tool in tools)


async def test_argument_type_errors_read_as_one_line(tmp_path: Path) -> None:
    async with Client(build_server(make_settings(tmp_path, "http://127.0.0.1:9"))) as client:
        result = await client.call_tool("alpaca_place_order", {"side": "buy", "qty": "lots", "notional": "x"})
    assert result.is_error
    assert text_of(result) == (  # #10: the decimal bounds say the allowed range
        "Invalid arguments for alpaca_place_order: qty: must be greater than 0 and at most 1,000,000,000, "
        "with at most 9 decimal places (got something that is not a number); notional: must be greater "
        "than 0 and at most 1,000,000,000, with at most 2 decimal places (got something that is not a number)."
    )


async def test_a_huge_unknown_tool_name_is_not_sent_back(tmp_path: Path) -> None:
    """A megabyte of "1e80000000" as the tool's name: the answer says so in one short line."""
    async with Client(build_server(make_settings(tmp_path, "http://127.0.0.1:9"))) as client:
        result = await client.call_tool("1e80000000" * 100_000, {})
        ordinary = await client.call_tool("no_such_tool", {})
    assert result.is_error
    assert text_of(result) == (
        "Unknown tool: a name of 1,000,000 characters (tool names have at most 64). "
        "Nothing was done; tools/list names the tools."
    )
    assert ordinary.is_error and text_of(ordinary) == "Unknown tool: no_such_tool"  # the SDK's, unchanged


def test_simulate_never_touches_the_real_database(tmp_path: Path) -> None:
    """`serve --simulate` with a PostgreSQL URL and real keys must use its own embedded demo vault."""
    real = make_settings(
        tmp_path, "https://paper-api.alpaca.markets", database_url="postgresql+asyncpg://u:p@127.0.0.1/prod"
    )
    with simulated_alpaca(real) as demo:
        assert demo.database_url is None
        assert demo.encryption_keys is None
        assert demo.data_dir == tmp_path / "simulator"
        assert demo.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'simulator' / 'vault.db'}"
        assert demo.paper_url.startswith("http://127.0.0.1:")
