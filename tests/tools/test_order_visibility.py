"""What an agent sees of its orders (issue #11 items 1 and 2), through the SDK's Client and the simulator.

The bracket story: a bracket buy fills; the default order list shows both exits; a sell of the
shares they hold is refused with the way out; cancel-all cancels both; the shares are sellable after.
And a re-sent client_order_id says that no new order was placed.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.server.settings import Settings
from alpaca_vault.simulator.runner import serve_in_thread
from tests.broker.test_live_orders import FILLED_ENTRY
from tests.fixtures.mcp_server import connect, make_settings, paper_session, text_of, wire


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    body: dict[str, Any] = wire(result)["structuredContent"]
    return body


def cents(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


async def test_bracket_exits_are_listed_explained_canceled_and_the_shares_sellable_after(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        trade = data(await client.call_tool("alpaca_get_latest_trade", {"symbols": "KO"}))
        price = Decimal(str(trade["trades"]["KO"]["price"]))
        placed = await client.call_tool(
            "alpaca_place_order",
            {
                "symbol": "KO",
                "side": "buy",
                "qty": 5,
                "order_class": "bracket",
                "time_in_force": "gtc",
                "take_profit_limit_price": cents(price * 2),
                "stop_loss_stop_price": cents(price / 2),
            },
        )
        bracket = data(placed)["order"]
        assert bracket["status"] == "filled"
        exits = {leg["id"] for leg in bracket["legs"]}
        assert len(exits) == 2
        assert sorted(leg["status"] for leg in bracket["legs"]) == ["held", "new"]
        # The placement's summary names both exits and their state.
        assert "2 exit legs: take-profit limit " in text_of(placed)
        assert ", stop-loss stop " in text_of(placed)
        assert "(new, id " in text_of(placed) and "(held, id " in text_of(placed)

        # The default list: the filled entry, with both exits live under it.
        listed = await client.call_tool("alpaca_list_orders", {})
        orders = data(listed)["orders"]
        assert [o["id"] for o in orders] == [bracket["id"]]
        assert {leg["id"] for leg in orders[0]["legs"]} == exits
        assert text_of(listed).startswith("2 open orders in 'paper-1' (exit legs included): ")
        # Flat, each exit on its own.
        flat = data(await client.call_tool("alpaca_list_orders", {"nested": False}))["orders"]
        assert {o["id"] for o in flat} == exits

        # The shares are promised to the exits: the refusal says so and names the way out.
        refused = await client.call_tool("alpaca_place_order", {"symbol": "KO", "side": "sell", "qty": 5})
        assert refused.is_error
        text = text_of(refused)
        assert "5 KO of the 5 held are held for open orders" in text
        # Alpaca names the order holding them: the working take-profit (the stop-loss is held, behind it).
        take_profit = next(leg["id"] for leg in bracket["legs"] if leg["type"] == "limit")
        assert f"alpaca_cancel_order(order_id='{take_profit}')" in text
        assert "alpaca_cancel_order(order_id=" in text and "alpaca_cancel_all_orders" in text

        canceled = await client.call_tool("alpaca_cancel_all_orders", {})
        assert {r["id"] for r in data(canceled)["results"]} == exits
        assert "Cancel requested for 2 of 2 open orders" in text_of(canceled)
        assert data(canceled)["still_open"] == []  # read again afterwards: nothing live was missed

        empty = await client.call_tool("alpaca_list_orders", {})
        assert data(empty)["orders"] == []
        assert text_of(empty).startswith("No open orders in 'paper-1'")
        at_broker = {o["id"]: o["status"] for o in simulator.orders(sim_account.api_key)}
        assert {at_broker[i] for i in exits} == {"canceled"}

        sold = data(await client.call_tool("alpaca_place_order", {"symbol": "KO", "side": "sell", "qty": 5}))
        assert sold["order"]["status"] == "filled"
        assert data(await client.call_tool("alpaca_get_positions", {}))["positions"] == []


async def test_a_resent_client_order_id_says_no_new_order_was_placed(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    arguments = {"symbol": "AAPL", "side": "buy", "qty": 1, "client_order_id": "agent-retry-1"}
    async with paper_session(server_settings, sim_account) as client:
        first = await client.call_tool("alpaca_place_order", arguments)
        assert data(first)["new_order_placed"] is True
        assert text_of(first).startswith("Order in 'paper-1'")

        # Within the guard's duplicate window, and the client answers no confirmation: a retry under the
        # same id is neither refused nor put to a person, and says what it is.
        again = await client.call_tool("alpaca_place_order", arguments)
        body = data(again)
        assert body["new_order_placed"] is False
        assert body["order"]["id"] == data(first)["order"]["id"]
        assert text_of(again).startswith(
            f"No new order was placed: client_order_id agent-retry-1 already names order {body['order']['id']}"
        )
        assert [o["client_order_id"] for o in simulator.orders(sim_account.api_key)] == ["agent-retry-1"]


async def test_cancel_all_names_live_orders_its_answer_did_not_cover(tmp_path: Path) -> None:
    """An upstream whose cancel-all skips a filled bracket's exits (as the issue saw): the agent is told."""

    async def orders(request: Request) -> Response:
        if request.method == "DELETE":
            return Response("[]", status_code=207, media_type="application/json")
        listing = [FILLED_ENTRY] if request.query_params.get("status") == "closed" else []
        return Response(json.dumps(listing), media_type="application/json")

    upstream = Starlette(routes=[Route("/v2/orders", orders, methods=["GET", "DELETE"])])
    with serve_in_thread(upstream) as url:
        async with connect(make_settings(tmp_path / "data", url)) as client:
            stored = await client.call_tool("store_credential", {
                "name": "p", "api_key": "PKSKIPPEDLEGS0000001", "secret_key": "s" * 40, "validate": False})  # fmt: skip
            assert not stored.is_error, text_of(stored)
            result = await client.call_tool("alpaca_cancel_all_orders", {})
    assert data(result)["still_open"] == ["tp-1", "sl-1"]
    assert "Still live and not covered by the cancel: tp-1, sl-1; cancel each with alpaca_cancel_order" in (
        text_of(result)
    )
