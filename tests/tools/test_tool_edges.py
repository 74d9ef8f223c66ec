"""Each tool's less travelled paths through the MCP protocol: paging, partial closes, crypto,
unknown symbols, orders that are no longer open, pasted keys with stray whitespace.

The SDK Client validates every structured result against the tool's advertised
outputSchema, so each successful call here also checks the result's shape.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from mcp import Client

from alpaca_vault.server.settings import Settings
from alpaca_vault.tools.registry import TOOLS
from tests.fixtures.mcp_server import connect, paper_session, text_of, wire
from tests.tools.test_trading_tools import data, latest_price


def error_text(result: Any) -> str:
    assert result.is_error, wire(result)
    return text_of(result)


async def buy(client: Client, symbol: str, qty: str, **extra: Any) -> dict[str, Any]:
    order: dict[str, Any] = data(
        await client.call_tool("alpaca_place_order", {"symbol": symbol, "side": "buy", "qty": qty, **extra})
    )["order"]
    assert order["status"] == "filled", order
    return order


# --------------------------------------------------------------------------- credentials


async def test_pasted_keys_with_surrounding_whitespace_are_stripped_before_validation(
    server_settings: Settings, sim_account: Any
) -> None:
    async with connect(server_settings) as client:
        stored = await client.call_tool(
            "store_credential",
            {
                "name": "pasted",
                "api_key": f"  {sim_account.api_key}\n",
                "secret_key": f"{sim_account.secret_key}\r\n",
            },
        )
        assert not stored.is_error, text_of(stored)
        assert wire(stored)["structuredContent"]["validated"] is True
        account = data(await client.call_tool("alpaca_get_account", {}))
        assert account["account"]["account_number"] == sim_account.account_number


async def test_keys_with_inner_spaces_or_non_ascii_are_refused_by_name(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with connect(server_settings) as client:
        for field, value in [
            ("api_key", sim_account.api_key[:6] + " " + sim_account.api_key[6:]),
            ("secret_key", sim_account.secret_key[:10] + "\u00e9" + sim_account.secret_key[10:]),
            ("secret_key", sim_account.secret_key[:10] + "\n" + sim_account.secret_key[10:]),
        ]:
            for validate in (True, False):
                arguments = {
                    "name": "bad",
                    "api_key": sim_account.api_key,
                    "secret_key": sim_account.secret_key,
                    field: value,
                    "validate": validate,
                }
                text = error_text(await client.call_tool("store_credential", arguments))
                assert field in text, text
                assert "401" not in text  # nothing was sent to Alpaca: no talk of a refused pair
                assert "Nothing was stored" in text
        assert wire(await client.call_tool("list_credentials", {}))["structuredContent"]["credentials"] == []

        await client.call_tool(
            "store_credential",
            {"name": "good", "api_key": sim_account.api_key, "secret_key": sim_account.secret_key},
        )
        fresh = simulator.new_account()
        text = error_text(
            await client.call_tool(
                "update_credential",
                {"credential": "good", "api_key": fresh.api_key, "secret_key": fresh.secret_key + " x"},
            )
        )
        assert "secret_key" in text and "401" not in text
        padded = await client.call_tool(
            "update_credential",
            {"credential": "good", "api_key": f" {fresh.api_key} ", "secret_key": f"{fresh.secret_key}\n"},
        )
        assert not padded.is_error, text_of(padded)
        assert wire(padded)["structuredContent"]["validated"] is True


async def test_an_inactive_credential_is_refused_by_every_kind_of_alpaca_tool(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        data(await client.call_tool("update_credential", {"credential": "paper-1", "is_active": False}))
        for name, arguments in [
            ("alpaca_get_account", {"credential": "paper-1"}),
            ("alpaca_get_latest_quote", {"symbols": "AAPL", "credential": "paper-1"}),
            ("alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1, "credential": "paper-1"}),
            ("validate_credential", {"credential": "paper-1"}),
        ]:
            text = error_text(await client.call_tool(name, arguments))
            assert "'paper-1' is deactivated" in text and "update_credential" in text, (name, text)
        # Without a name, the agent learns which inactive credentials exist and how to activate one.
        text = error_text(await client.call_tool("alpaca_get_account", {}))
        assert "paper-1" in text and "update_credential" in text
    assert simulator.orders(sim_account.api_key) == []


# --------------------------------------------------------------------------- orders


async def test_get_order_needs_exactly_one_id(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        order = await buy(client, "AAPL", "1")
        for arguments in ({}, {"order_id": order["id"], "client_order_id": order["client_order_id"]}):
            assert "exactly one of order_id or client_order_id" in error_text(
                await client.call_tool("alpaca_get_order", arguments)
            )
        missing = error_text(await client.call_tool("alpaca_get_order", {"client_order_id": "never-used"}))
        assert "404" in missing and "alpaca_list_orders" in missing
        malformed = error_text(await client.call_tool("alpaca_get_order", {"order_id": "../account"}))
        assert "order" in malformed.lower()


async def test_replacing_or_cancelling_a_filled_order_says_to_check_its_status(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        order = await buy(client, "AAPL", "1")
        replaced = error_text(
            await client.call_tool("alpaca_replace_order", {"order_id": order["id"], "qty": 2})
        )
        assert "422" in replaced and "alpaca_get_order" in replaced
        # The arguments were fine: the order is no longer open. Not the generic 422 advice to change them
        # (the old check looked for a text that exists nowhere, so it could never fail).
        assert "The order is probably no longer open" in replaced
        assert "Change what Alpaca's message names" not in replaced
        canceled = error_text(await client.call_tool("alpaca_cancel_order", {"order_id": order["id"]}))
        assert "422" in canceled and "alpaca_get_order" in canceled
        nothing = error_text(await client.call_tool("alpaca_replace_order", {"order_id": order["id"]}))
        assert "nothing to replace" in nothing
    assert len(simulator.orders(sim_account.api_key)) == 1


async def test_crypto_orders_default_to_good_till_canceled(
    server_settings: Settings, sim_account: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        order = await buy(client, "btc/usd", "0.01")
        assert order["time_in_force"] == "gtc"
        stock = await buy(client, "AAPL", "1")
        assert stock["time_in_force"] == "day"
        explicit_day = error_text(
            await client.call_tool(
                "alpaca_place_order",
                {"symbol": "BTC/USD", "side": "buy", "qty": "0.01", "time_in_force": "day"},
            )
        )
        assert "gtc" in explicit_day and "ioc" in explicit_day
        assert "Invalid arguments: crypto orders (BTC/USD) need time_in_force" in explicit_day
        tp_only = error_text(
            await client.call_tool(
                "alpaca_place_order",
                {"symbol": "AAPL", "side": "buy", "qty": 1, "take_profit_limit_price": 500},
            )
        )
        assert "Invalid arguments: take_profit and stop_loss need order_class" in tp_only


async def test_close_position_fully_by_qty_or_by_percentage(
    server_settings: Settings, sim_account: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        await buy(client, "AAPL", "10")
        by_qty = data(await client.call_tool("alpaca_close_position", {"symbol": "AAPL", "qty": "4"}))
        assert Decimal(by_qty["order"]["qty"]) == 4 and by_qty["order"]["side"] == "sell"
        position = data(await client.call_tool("alpaca_get_position", {"symbol": "AAPL"}))["position"]
        assert Decimal(position["qty"]) == 6

        by_pct = data(await client.call_tool("alpaca_close_position", {"symbol": "AAPL", "percentage": 50}))
        assert Decimal(by_pct["order"]["qty"]) == 3
        position = data(await client.call_tool("alpaca_get_position", {"symbol": "AAPL"}))["position"]
        assert Decimal(position["qty"]) == 3

        both = error_text(
            await client.call_tool("alpaca_close_position", {"symbol": "AAPL", "qty": 1, "percentage": 10})
        )
        assert "not both" in both
        too_many = error_text(await client.call_tool("alpaca_close_position", {"symbol": "AAPL", "qty": 99}))
        assert "403" in too_many and "insufficient qty" in too_many
        over = error_text(
            await client.call_tool("alpaca_close_position", {"symbol": "AAPL", "percentage": 150})
        )
        assert "percentage" in over

        data(await client.call_tool("alpaca_close_position", {"symbol": "AAPL"}))
        gone = error_text(await client.call_tool("alpaca_get_position", {"symbol": "AAPL"}))
        assert "404" in gone and "alpaca_get_positions" in gone
        never_held = error_text(await client.call_tool("alpaca_close_position", {"symbol": "MSFT"}))
        assert "404" in never_held


async def test_crypto_position_by_pair(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        await buy(client, "BTC/USD", "0.5", time_in_force="gtc")
        position = data(await client.call_tool("alpaca_get_position", {"symbol": "BTC/USD"}))["position"]
        assert Decimal(position["qty"]) == Decimal("0.5")
        closing = data(
            await client.call_tool("alpaca_close_position", {"symbol": "BTC/USD", "percentage": "50"})
        )
        assert Decimal(closing["order"]["qty"]) == Decimal("0.25")


async def test_an_unknown_outcome_without_client_order_id_says_check_before_repeating(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        await buy(client, "AAPL", "2")
        simulator.set_fault(match="DELETE /v2/positions/*", lost_response="504", count=1)
        text = error_text(await client.call_tool("alpaca_close_position", {"symbol": "AAPL"}))
        assert "Do NOT repeat" in text and "alpaca_get_positions" in text and "alpaca_list_orders" in text


# --------------------------------------------------------------------------- account


async def test_activities_page_through_with_page_token(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        for qty in ("1", "2", "3"):  # three different orders (the same one again would ask for a person)
            await buy(client, "AAPL", qty)
        first = data(await client.call_tool("alpaca_get_activities", {"page_size": 2}))
        assert len(first["activities"]) == 2
        assert first["next_page_token"] == first["activities"][-1]["id"]
        second = data(
            await client.call_tool(
                "alpaca_get_activities", {"page_size": 2, "page_token": first["next_page_token"]}
            )
        )
        assert len(second["activities"]) == 1
        assert second["next_page_token"] is None
        ids = [a["id"] for a in first["activities"] + second["activities"]]
        assert len(set(ids)) == 3
        none = data(await client.call_tool("alpaca_get_activities", {"activity_types": ["DIV"]}))
        assert none["activities"] == [] and none["next_page_token"] is None
        bad = error_text(await client.call_tool("alpaca_get_activities", {"activity_types": ["F;LL"]}))
        assert "activity_types" in bad


async def test_portfolio_history_periods_and_a_bad_period(
    server_settings: Settings, sim_account: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        await buy(client, "AAPL", "1")
        for period in ("1D", "1W", "1M", "1A"):
            history = data(await client.call_tool("alpaca_get_portfolio_history", {"period": period}))
            assert history["history"]["timestamp"], period
            assert len(history["history"]["equity"]) == len(history["history"]["timestamp"])
        intraday = data(
            await client.call_tool("alpaca_get_portfolio_history", {"period": "1D", "timeframe": "15Min"})
        )
        assert intraday["history"]["timeframe"] == "15Min"
        bad = error_text(await client.call_tool("alpaca_get_portfolio_history", {"period": "2X"}))
        assert "period must look like" in bad


# --------------------------------------------------------------------------- market


async def test_calendar_defaults_to_the_coming_week_and_refuses_a_reversed_range(
    server_settings: Settings, sim_account: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        week = data(await client.call_tool("alpaca_get_calendar", {}))["days"]
        assert 3 <= len(week) <= 6
        today = dt.date.today().isoformat()
        assert all(d["date"] >= today for d in week)
        reversed_range = error_text(
            await client.call_tool("alpaca_get_calendar", {"start": "2026-12-10", "end": "2026-12-01"})
        )
        assert "end" in reversed_range and "start" in reversed_range


async def test_bars_without_start_are_the_most_recent_limit_bars(
    server_settings: Settings, sim_account: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        daily = data(await client.call_tool("alpaca_get_bars", {"symbol": "AAPL", "limit": 60}))
        assert len(daily["bars"]) == 60
        stamps = [b["timestamp"] for b in daily["bars"]]
        assert stamps == sorted(stamps)
        newest = dt.datetime.fromisoformat(stamps[-1])
        assert dt.datetime.now(dt.UTC) - newest < dt.timedelta(days=5)

        hourly = data(
            await client.call_tool("alpaca_get_bars", {"symbol": "MSFT", "timeframe": "1Hour", "limit": 30})
        )
        assert len(hourly["bars"]) == 30


async def test_bars_page_backwards_with_next_page_token(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        first = data(await client.call_tool("alpaca_get_bars", {"symbol": "SPY", "limit": 5}))
        assert len(first["bars"]) == 5 and first["next_page_token"]
        older = data(
            await client.call_tool(
                "alpaca_get_bars", {"symbol": "SPY", "limit": 5, "page_token": first["next_page_token"]}
            )
        )
        assert len(older["bars"]) == 5
        assert older["bars"][-1]["timestamp"] < first["bars"][0]["timestamp"]

        ranged = data(
            await client.call_tool(
                "alpaca_get_bars",
                {
                    "symbol": "SPY",
                    "start": "2026-10-01T00:00:00Z",
                    "end": "2026-10-31T00:00:00Z",
                    "limit": 10,
                },
            )
        )
        assert len(ranged["bars"]) == 10
        assert ranged["bars"][0]["timestamp"] >= "2026-10-01"
        reversed_range = error_text(
            await client.call_tool(
                "alpaca_get_bars",
                {"symbol": "SPY", "start": "2026-10-31T00:00:00Z", "end": "2026-10-01T00:00:00Z"},
            )
        )
        assert "end" in reversed_range and "start" in reversed_range


async def test_crypto_market_data(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        quotes = data(await client.call_tool("alpaca_get_latest_quote", {"symbols": "eth/usd"}))["quotes"]
        assert list(quotes) == ["ETH/USD"]
        assert Decimal(quotes["ETH/USD"]["ask_price"]) >= Decimal(quotes["ETH/USD"]["bid_price"]) > 0
        snapshot = data(await client.call_tool("alpaca_get_snapshot", {"symbols": "BTC/USD"}))["snapshots"][
            "BTC/USD"
        ]
        assert snapshot["latest_trade"] and snapshot["latest_quote"]
        bars = data(
            await client.call_tool("alpaca_get_bars", {"symbol": "BTC/USD", "timeframe": "1Hour", "limit": 3})
        )
        assert len(bars["bars"]) == 3
        assert await latest_price(client, "BTC/USD") > 0
        asset = data(await client.call_tool("alpaca_get_asset", {"symbol": "BTC/USD"}))["asset"]
        assert asset["asset_class"] == "crypto"
        # Written without the slash, a pair is not found; the error shows how to write it.
        text = error_text(await client.call_tool("alpaca_get_latest_quote", {"symbols": "BTCUSD"}))
        assert "BTC/USD" in text


async def test_unknown_symbol_for_each_market_data_tool(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        for name in ("alpaca_get_latest_quote", "alpaca_get_latest_trade", "alpaca_get_snapshot"):
            text = error_text(await client.call_tool(name, {"symbols": "NOSUCH"}))
            assert "NOSUCH" in text and "alpaca_get_asset" in text, (name, text)
        asset = error_text(await client.call_tool("alpaca_get_asset", {"symbol": "NOSUCH"}))
        assert "404" in asset and "NOSUCH" in asset
        # No bars is an answer, not an error, but the summary says what to check.
        bars = await client.call_tool("alpaca_get_bars", {"symbol": "NOSUCH"})
        assert not bars.is_error
        assert wire(bars)["structuredContent"]["bars"] == []
        assert "alpaca_get_asset" in text_of(bars)
        for name, argument in (
            ("alpaca_get_latest_quote", "symbols"),
            ("alpaca_get_bars", "symbol"),
            ("alpaca_get_position", "symbol"),
        ):
            text = error_text(await client.call_tool(name, {argument: "AAPL; DROP"}))
            assert "not a valid symbol" in text, (name, text)


async def test_tool_descriptions_are_dedented(server_settings: Settings) -> None:
    async with connect(server_settings) as client:
        tools = (await client.list_tools()).tools
    assert len(tools) == len(TOOLS) <= 48  # issue #15: the whole surface in at most 48 tools
    for tool in tools:
        assert tool.description and tool.description == tool.description.strip(), tool.name
        assert "\n    " not in tool.description, tool.name


# --------------------------------------------------------------------------- Alpaca's failures


async def test_revoked_keys_name_the_credential_and_the_fix(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        data(
            await client.call_tool(
                "update_credential",
                {
                    "credential": "paper-1",
                    "api_key": sim_account.api_key,
                    "secret_key": "RevokedSecretRevokedSecret0000000000000",
                    "validate": False,
                },
            )
        )
        for name, arguments in [
            ("alpaca_get_account", {}),
            ("alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1}),
            ("validate_credential", {}),
        ]:
            text = error_text(await client.call_tool(name, arguments))
            assert "401" in text and "'paper-1'" in text and "update_credential" in text, (name, text)
    assert simulator.orders(sim_account.api_key) == []


async def test_a_long_rate_limit_says_how_long_to_wait(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        simulator.set_fault(match="GET /v2/account", status=429, retry_after=60, count=1)
        text = error_text(await client.call_tool("alpaca_get_account", {}))
        assert "rate limit" in text and "'paper-1'" in text and "Wait 60 s" in text


async def test_server_errors_on_an_order_post_are_not_blindly_retried(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        simulator.set_fault(match="POST /v2/orders", status=503, count=2)
        text = error_text(
            await client.call_tool(
                "alpaca_place_order",
                {"symbol": "AAPL", "side": "buy", "qty": 1, "client_order_id": "five-oh-3"},
            )
        )
        assert "NOT placed" in text and "five-oh-3" in text
        assert simulator.orders(sim_account.api_key) == []
        again = data(
            await client.call_tool(
                "alpaca_place_order",
                {"symbol": "AAPL", "side": "buy", "qty": 1, "client_order_id": "five-oh-3"},
            )
        )
        assert again["order"]["client_order_id"] == "five-oh-3"
        assert len(simulator.orders(sim_account.api_key)) == 1


async def test_a_lost_order_that_cannot_be_looked_up_says_which_id_to_check(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        simulator.set_fault(match="POST /v2/orders", lost_response="504", count=1)
        simulator.set_fault(match="GET /v2/orders:by_client_order_id", status=503, count=4)
        text = error_text(
            await client.call_tool(
                "alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1, "client_order_id": "lost-1"}
            )
        )
        assert "outcome is unknown" in text and "Do NOT" in text
        assert "alpaca_get_order" in text and "client_order_id='lost-1'" in text
        simulator.clear_faults()
        found = data(await client.call_tool("alpaca_get_order", {"client_order_id": "lost-1"}))
        assert found["order"]["client_order_id"] == "lost-1"
        assert len(simulator.orders(sim_account.api_key)) == 1


async def test_an_unreachable_alpaca_says_what_to_check(
    server_settings: Settings, sim_account: Any, unused_tcp_port: int
) -> None:
    async with paper_session(server_settings, sim_account):
        pass  # the credential is stored in the data dir; now serve it with URLs nothing listens on
    nowhere = f"http://127.0.0.1:{unused_tcp_port}"
    unreachable = server_settings.model_copy(update={"paper_url": nowhere, "data_url": nowhere})
    async with connect(unreachable) as client:
        # Nothing was sent (no connection), so this is not an "unknown outcome": just what to check.
        text = error_text(
            await client.call_tool("alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1})
        )
        assert "Could not connect to Alpaca" in text and "ALPACA_VAULT_PAPER_URL" in text
        assert "unknown" not in text


async def test_validating_a_closed_account_warns_it_cannot_trade(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        simulator.set_account_status(sim_account.api_key, "ACCOUNT_CLOSED")
        result = await client.call_tool("validate_credential", {})
        body = data(result)
        assert body["credential"]["account_status"] == "ACCOUNT_CLOSED"
        assert "not ACTIVE" in text_of(result)


async def test_list_orders_filters_by_status_and_symbol(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        await buy(client, "AAPL", "1")
        await buy(client, "MSFT", "1")
        price = await latest_price(client, "SPY")
        resting = data(
            await client.call_tool(
                "alpaca_place_order",
                {
                    "symbol": "SPY",
                    "side": "buy",
                    "qty": 1,
                    "type": "limit",
                    "limit_price": str((price / 2).quantize(Decimal("0.01"))),
                },
            )
        )["order"]
        open_orders = data(await client.call_tool("alpaca_list_orders", {}))["orders"]
        assert [o["id"] for o in open_orders] == [resting["id"]]
        closed = data(await client.call_tool("alpaca_list_orders", {"status": "closed"}))["orders"]
        assert sorted(o["symbol"] for o in closed) == ["AAPL", "MSFT"]
        only_msft = data(
            await client.call_tool("alpaca_list_orders", {"status": "all", "symbols": ["msft"]})
        )["orders"]
        assert [o["symbol"] for o in only_msft] == ["MSFT"]
        newest = data(await client.call_tool("alpaca_list_orders", {"status": "all", "limit": 1}))["orders"]
        assert [o["id"] for o in newest] == [resting["id"]]
        empty = await client.call_tool("alpaca_list_orders", {"symbols": ["NVDA"]})
        assert "No open orders" in text_of(empty)
        bad = error_text(await client.call_tool("alpaca_list_orders", {"symbols": ["../x"]}))
        assert "not a valid symbol" in bad


async def test_a_dollar_amount_of_crypto_can_be_bought(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as client:
        order = data(
            await client.call_tool(
                "alpaca_place_order", {"symbol": "BTC/USD", "side": "buy", "notional": 100}
            )
        )["order"]
        assert Decimal(order["notional"]) == 100
