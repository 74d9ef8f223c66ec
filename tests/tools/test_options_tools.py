"""Issue #15 option tools through the MCP protocol: contract search with pages, the chain with greeks,
single-leg and multi-leg orders, exercise; and a crypto round trip, against the simulator."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from alpaca_vault.server.settings import Settings
from tests.fixtures.mcp_server import paper_session, text_of
from tests.tools.test_trading_tools import data


def error_text(result: Any) -> str:
    assert result.is_error, text_of(result)
    return text_of(result)


async def test_contract_search_pages_and_filters(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        today = dt.date.today()
        args = {
            "underlying": "spy",
            "type": "put",
            "expiration_date_gte": str(today),
            "expiration_date_lte": str(today + dt.timedelta(days=30)),
            "strike_price_gte": 300,
            "strike_price_lte": 900,
            "limit": 4,
        }
        first = data(await client.call_tool("alpaca_get_option_contracts", args))
        assert len(first["contracts"]) == 4 and first["next_page_token"]
        second = data(
            await client.call_tool(
                "alpaca_get_option_contracts", {**args, "page_token": first["next_page_token"]}
            )
        )
        seen = [c["symbol"] for c in first["contracts"] + second["contracts"]]
        assert len(set(seen)) == len(seen) == 4 + len(second["contracts"])
        for contract in first["contracts"] + second["contracts"]:
            assert contract["underlying_symbol"] == "SPY" and contract["type"] == "put"
            assert 300 <= Decimal(str(contract["strike_price"])) <= 900
        assert "strike_price_gte" in error_text(
            await client.call_tool(
                "alpaca_get_option_contracts",
                {"underlying": "SPY", "strike_price_gte": 500, "strike_price_lte": 400},
            )
        )
        assert "stock ticker" in error_text(
            await client.call_tool("alpaca_get_option_contracts", {"underlying": "BTC/USD"})
        )


async def test_chain_carries_greeks_and_pages(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        soon = str(dt.date.today() + dt.timedelta(days=7))
        args = {"underlying": "AAPL", "type": "call", "limit": 3, "expiration_date_gte": soon}
        result = await client.call_tool("alpaca_get_option_chain", args)
        chain = data(result)
        assert len(chain["snapshots"]) == 3 and chain["next_page_token"]
        for symbol, snapshot in chain["snapshots"].items():
            assert symbol.startswith("AAPL") and "C" in symbol[4:]
            assert snapshot["latest_quote"]["ask_price"] is not None, snapshot
            if snapshot["greeks"] is not None:  # no greeks where the quote has no time value to solve from
                assert (
                    snapshot["greeks"]["delta"] is not None
                    and Decimal(str(snapshot["implied_volatility"])) > 0
                )
        assert "3 AAPL contract(s)" in text_of(result)
        near = await calls_from_the_chain(client)
        greeks = data(await client.call_tool("alpaca_get_snapshot", {"symbols": ",".join(near[:2])}))[
            "snapshots"
        ]
        assert all(g["greeks"]["delta"] is not None and g["implied_volatility"] for g in greeks.values())
        nxt = data(
            await client.call_tool(
                "alpaca_get_option_chain",
                {**args, "page_token": chain["next_page_token"]},
            )
        )
        assert not set(nxt["snapshots"]) & set(chain["snapshots"])
        assert "limit" in error_text(
            await client.call_tool("alpaca_get_option_chain", {"underlying": "AAPL", "limit": 5000})
        )


async def calls_from_the_chain(client: Any, at_least: int = 2) -> list[str]:
    """Call contracts a few weeks out, strikes from the money to 10% above it, found through the chain."""
    price = Decimal(
        str(
            data(await client.call_tool("alpaca_get_latest_trade", {"symbols": "AAPL"}))["trades"]["AAPL"][
                "price"
            ]
        )
    )
    today = dt.date.today()
    chain = data(
        await client.call_tool(
            "alpaca_get_option_chain",
            {
                "underlying": "AAPL",
                "type": "call",
                "expiration_date_gte": str(today + dt.timedelta(days=14)),
                "expiration_date_lte": str(today + dt.timedelta(days=21)),
                "strike_price_gte": str(price),
                "strike_price_lte": str(price * Decimal("1.1")),
                "limit": 20,
            },
        )
    )
    symbols = sorted(chain["snapshots"])
    assert len(symbols) >= at_least, chain
    assert all(chain["snapshots"][c]["latest_quote"]["ask_price"] for c in symbols)
    return symbols


async def test_options_round_trip(server_settings: Settings, sim_account: Any, simulator: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        calls = await calls_from_the_chain(client)
        long_call = calls[0]
        bought = await client.call_tool(
            "alpaca_place_order",
            {"symbol": long_call, "side": "buy", "qty": 1, "position_intent": "buy_to_open"},
        )
        order = data(bought)["order"]
        assert order["symbol"] == long_call and order["status"] == "filled", order
        positions = data(await client.call_tool("alpaca_get_positions", {}))["positions"]
        assert [p["qty"] for p in positions if p["symbol"] == long_call] == ["1"] or any(
            p["symbol"] == long_call and Decimal(str(p["qty"])) == 1 for p in positions
        )
        # A bull call spread: buy the lower strike, sell the higher, one net order, checked leg by leg by
        # the trading guard. Its net limit is far below the market, so it rests and leaves the positions be.
        low, high = calls[0], calls[-1]
        spread = await client.call_tool(
            "alpaca_place_order",
            {
                "order_class": "mleg",
                "qty": 1,
                "type": "limit",
                "limit_price": "0.01",
                "legs": [
                    {"symbol": low, "side": "buy", "ratio_qty": 1, "position_intent": "buy_to_open"},
                    {"symbol": high, "side": "sell", "ratio_qty": 1, "position_intent": "sell_to_open"},
                ],
            },
        )
        resting = data(spread)["order"]
        assert resting["order_class"] == "mleg" and resting["status"] in ("new", "accepted"), resting
        assert "mleg" in text_of(spread)
        await client.call_tool("alpaca_cancel_order", {"order_id": resting["id"]})
        held = {
            p["symbol"]: Decimal(str(p["qty"]))
            for p in data(await client.call_tool("alpaca_get_positions", {}))["positions"]
        }
        assert held[low] == 1 and high not in held
        # Mark the remaining long call do-not-exercise, then exercise it now: nothing of it is held.
        dne = await client.call_tool("alpaca_exercise_option", {"symbol": low, "action": "do_not_exercise"})
        assert data(dne)["instruction"] == "do_not_exercise" and "Do-not-exercise" in text_of(dne)
        exercised = await client.call_tool("alpaca_exercise_option", {"symbol": low})
        assert data(exercised)["accepted"] is True and "Exercise requested" in text_of(exercised)
        held = {p["symbol"] for p in data(await client.call_tool("alpaca_get_positions", {}))["positions"]}
        assert low not in held
        # Exercising what is not held is Alpaca's refusal, explained; a stock is refused before sending.
        assert error_text(await client.call_tool("alpaca_exercise_option", {"symbol": high}))
        assert "OCC" in error_text(await client.call_tool("alpaca_exercise_option", {"symbol": "AAPL"}))


async def test_option_and_mleg_argument_rules(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        calls = await calls_from_the_chain(client)
        same_twice = [{"symbol": calls[0], "side": "buy"}] * 2
        cases = [
            ({"symbol": calls[0], "side": "buy", "qty": "1.5"}, "whole contracts"),
            ({"symbol": calls[0], "side": "buy", "qty": 1, "time_in_force": "gtc"}, "day"),
            ({"symbol": calls[0], "side": "buy", "notional": 100}, "notional"),
            ({"symbol": calls[0], "side": "buy", "qty": 1, "position_intent": "sell_to_open"}, "does not fit"),
            ({"order_class": "mleg", "qty": 1}, "legs"),
            ({"order_class": "mleg", "qty": 1, "symbol": "AAPL", "legs": same_twice},
             "no symbol or side"),
            ({"order_class": "mleg", "qty": 1, "legs": same_twice}, "different contract"),
            ({"order_class": "mleg", "qty": 1, "legs": [{"symbol": c, "side": "buy"} for c in calls[:1] * 5]}, "legs"),
            ({"order_class": "mleg", "qty": 1, "legs": [{"symbol": "AAPL", "side": "buy"}, same_twice[0]]},
             "OCC"),
            ({"symbol": "AAPL", "side": "buy", "qty": 1, "legs": [{"symbol": calls[0], "side": "buy"}] * 2}, "mleg"),
            ({"side": "buy", "qty": 1}, "symbol and side"),
        ]  # fmt: skip
        for arguments, expected in cases:
            text = error_text(await client.call_tool("alpaca_place_order", arguments))
            assert expected in text, (arguments, text)
        assert simulator.orders(sim_account.api_key) == []  # nothing reached the broker


async def test_crypto_round_trip(server_settings: Settings, sim_account: Any, simulator: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        bought = data(
            await client.call_tool(
                "alpaca_place_order", {"symbol": "BTC/USD", "side": "buy", "notional": 500}
            )
        )
        assert bought["order"]["time_in_force"] == "gtc" and bought["order"]["status"] == "filled"
        position = data(await client.call_tool("alpaca_get_position", {"symbol": "BTC/USD"}))["position"]
        held = Decimal(str(position["qty"]))
        assert 0 < held < 1  # a fraction of a coin
        price = Decimal(
            str(
                data(await client.call_tool("alpaca_get_latest_trade", {"symbols": "BTC/USD"}))["trades"][
                    "BTC/USD"
                ]["price"]
            )
        )
        limit = (price * 2).quantize(Decimal("0.01"))
        sell = data(
            await client.call_tool(
                "alpaca_place_order",
                {"symbol": "BTC/USD", "side": "sell", "qty": str(held), "type": "limit", "limit_price": str(limit),
                 "time_in_force": "gtc"},
            )
        )["order"]  # fmt: skip
        assert sell["status"] in ("new", "accepted") and sell["time_in_force"] == "gtc"
        listed = data(
            await client.call_tool("alpaca_list_orders", {"status": "open", "symbols": ["BTC/USD"]})
        )
        assert [o["id"] for o in listed["orders"]] == [sell["id"]]
        for arguments, expected in [
            ({"symbol": "BTC/USD", "side": "buy", "qty": 1, "time_in_force": "day"}, "gtc"),
            ({"symbol": "BTC/USD", "side": "buy", "qty": 1, "type": "trailing_stop", "trail_percent": 5},
             "not trailing_stop"),
            ({"symbol": "BTC/USD", "side": "buy", "notional": 10, "type": "limit", "limit_price": 1}, "notional"),
            ({"symbol": "BTC/USD", "side": "buy", "qty": 1, "position_intent": "buy_to_open"}, "option"),
        ]:  # fmt: skip
            assert expected in error_text(await client.call_tool("alpaca_place_order", arguments)), arguments
