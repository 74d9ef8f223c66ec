"""`alpaca-vault serve` as Claude Desktop runs it: a subprocess over stdio, the SDK's Client, the simulator
under uvicorn on loopback. A first start on an empty vault (the server upgrades it), then issue #15's
round trips in the same process (a server process costs seconds of CPU; what each step asserts does not
depend on another process).

Crypto: a notional buy, the fractional position, a gtc limit sell resting on the book.
Options: a contract found through the chain, a single-leg buy, the position, a two-leg spread opened and
closed, the single leg closed.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult

from tests.server.test_stdio import SERVE, server_env
from tests.tools.test_options_tools import calls_from_the_chain

# The trading guard refuses every mleg order until its policy checks each leg (guard/orders.py); the
# per-leg checks are another engineer's work (branch guard2). Remove this once they are merged.


def ok(result: CallToolResult) -> dict[str, Any]:
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    assert not result.is_error, text
    assert result.structured_content is not None, text
    return result.structured_content


def held(positions: dict[str, Any]) -> dict[str, Decimal]:
    return {p["symbol"]: Decimal(str(p["qty"])) for p in positions["positions"]}


async def _crypto_round_trip(client: Client) -> None:
    bought = ok(
        await client.call_tool("alpaca_place_order", {"symbol": "BTC/USD", "side": "buy", "notional": 250})
    )["order"]
    assert bought["status"] == "filled" and bought["time_in_force"] == "gtc" and bought["notional"] == "250"
    coins = Decimal(
        str(ok(await client.call_tool("alpaca_get_position", {"symbol": "BTC/USD"}))["position"]["qty"])
    )
    assert 0 < coins < 1
    last = ok(await client.call_tool("alpaca_get_latest_trade", {"symbols": "BTC/USD"}))["trades"]["BTC/USD"]
    limit = (Decimal(str(last["price"])) * Decimal("1.5")).quantize(Decimal("0.01"))
    sell = ok(
        await client.call_tool(
            "alpaca_place_order",
            {
                "symbol": "BTC/USD",
                "side": "sell",
                "qty": str(coins),
                "type": "limit",
                "limit_price": str(limit),
                "time_in_force": "gtc",
            },
        )
    )["order"]
    assert sell["time_in_force"] == "gtc" and sell["status"] in ("new", "accepted")
    assert Decimal(sell["qty"]) == coins and Decimal(sell["limit_price"]) == limit
    listed = ok(await client.call_tool("alpaca_list_orders", {"status": "open", "symbols": ["BTC/USD"]}))
    assert [o["id"] for o in listed["orders"]] == [sell["id"]]


def _spread(low: str, high: str, opening: bool) -> dict[str, Any]:
    """A bull call spread (buy the lower strike, sell the higher) as one mleg order, or the order closing it."""
    return {
        "order_class": "mleg",
        "qty": 1,
        "legs": [
            {"symbol": low, "side": "buy" if opening else "sell", "ratio_qty": 1,
             "position_intent": "buy_to_open" if opening else "sell_to_close"},
            {"symbol": high, "side": "sell" if opening else "buy", "ratio_qty": 1,
             "position_intent": "sell_to_open" if opening else "buy_to_close"},
        ],
    }  # fmt: skip


async def _options_round_trip(client: Client) -> None:
    """Find a contract in the chain, buy it, open a two-leg spread through the guard, close both."""
    contracts = await calls_from_the_chain(client, at_least=3)
    single, low, high = contracts[0], contracts[1], contracts[-1]
    bought = ok(
        await client.call_tool(
            "alpaca_place_order",
            {"symbol": single, "side": "buy", "qty": 1, "position_intent": "buy_to_open"},
        )
    )["order"]
    assert (
        bought["symbol"] == single and bought["status"] == "filled" and bought["asset_class"] == "us_option"
    )
    assert held(ok(await client.call_tool("alpaca_get_positions", {})))[single] == 1

    spread = ok(await client.call_tool("alpaca_place_order", _spread(low, high, opening=True)))["order"]
    assert spread["order_class"] == "mleg" and spread["status"] == "filled", spread
    assert sorted(leg["symbol"] for leg in spread["legs"]) == sorted([low, high])
    opened_positions = held(ok(await client.call_tool("alpaca_get_positions", {})))
    assert (opened_positions[single], opened_positions[low], opened_positions[high]) == (1, 1, -1)

    closed = ok(await client.call_tool("alpaca_place_order", _spread(low, high, opening=False)))["order"]
    assert closed["status"] == "filled", closed
    after = held(ok(await client.call_tool("alpaca_get_positions", {})))
    assert after.get(single) == 1 and low not in after and high not in after

    ok(await client.call_tool("alpaca_close_position", {"symbol": single}))
    assert single not in held(ok(await client.call_tool("alpaca_get_positions", {})))


@pytest.mark.timeout(120)
async def test_sdk_client_over_stdio_then_crypto_and_options_round_trips(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    params = StdioServerParameters(
        command=SERVE[0], args=SERVE[1:], env=server_env(tmp_path, simulator.base_url)
    )
    async with Client(params) as client:
        assert client.server_info is not None and client.server_info.name == "alpaca-vault"
        assert client.instructions and "list_credentials" in client.instructions
        tools = await client.list_tools()
        assert len(tools.tools) == 46
        stored = await client.call_tool(
            "store_credential",
            {"name": "desk", "api_key": sim_account.api_key, "secret_key": sim_account.secret_key},
        )
        assert not stored.is_error
        account = await client.call_tool("alpaca_get_account", {"credential": "desk"})
        assert not account.is_error
        assert account.structured_content["account"]["account_number"] == sim_account.account_number

        await _crypto_round_trip(client)
        await _options_round_trip(client)
