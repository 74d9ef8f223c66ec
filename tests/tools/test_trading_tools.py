"""Account and trading tools through the MCP protocol against the simulator on loopback."""

from __future__ import annotations

import secrets
import string
from decimal import Decimal
from typing import Any

from mcp import Client
from mcp_types import ElicitResult

from alpaca_vault.server.app import build_server
from alpaca_vault.server.settings import Settings
from tests.fixtures.mcp_server import paper_session, text_of, wire


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    body: dict[str, Any] = wire(result)["structuredContent"]
    return body


async def latest_price(client: Client, symbol: str) -> Decimal:
    trade = data(await client.call_tool("alpaca_get_latest_trade", {"symbols": symbol}))
    return Decimal(str(trade["trades"][symbol.upper()]["price"]))


async def test_account_positions_and_a_full_order_lifecycle(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        account = data(await paper_client.call_tool("alpaca_get_account", {}))
        cash_before = Decimal(account["account"]["cash"])
        assert account["credential"] == "paper-1"

        bought = data(
            await paper_client.call_tool("alpaca_place_order", {"symbol": "aapl", "side": "buy", "qty": 10})
        )["order"]
        assert bought["symbol"] == "AAPL"
        assert bought["status"] == "filled"
        assert bought["client_order_id"]  # generated and returned

        positions = data(await paper_client.call_tool("alpaca_get_positions", {}))["positions"]
        assert [(p["symbol"], Decimal(p["qty"])) for p in positions] == [("AAPL", Decimal(10))]
        position = data(await paper_client.call_tool("alpaca_get_position", {"symbol": "AAPL"}))["position"]
        assert Decimal(position["qty"]) == 10

        price = await latest_price(paper_client, "AAPL")
        resting = data(
            await paper_client.call_tool(
                "alpaca_place_order",
                {
                    "symbol": "AAPL",
                    "side": "sell",
                    "qty": 5,
                    "type": "limit",
                    "limit_price": str((price * 2).quantize(Decimal("0.01"))),
                    "time_in_force": "gtc",
                },
            )
        )["order"]
        assert resting["status"] in ("new", "accepted")
        open_orders = data(await paper_client.call_tool("alpaca_list_orders", {"status": "open"}))["orders"]
        assert [o["id"] for o in open_orders] == [resting["id"]]

        replaced = data(
            await paper_client.call_tool(
                "alpaca_replace_order",
                {"order_id": resting["id"], "limit_price": str((price * 3).quantize(Decimal("0.01")))},
            )
        )["order"]
        assert replaced["id"] != resting["id"]
        assert replaced["replaces"] == resting["id"]

        by_client_id = data(
            await paper_client.call_tool("alpaca_get_order", {"client_order_id": replaced["client_order_id"]})
        )["order"]
        assert by_client_id["id"] == replaced["id"]

        canceled = data(await paper_client.call_tool("alpaca_cancel_order", {"order_id": replaced["id"]}))
        assert canceled["canceled"] is True
        final = data(await paper_client.call_tool("alpaca_get_order", {"order_id": replaced["id"]}))["order"]
        assert final["status"] == "canceled"

        closed = data(await paper_client.call_tool("alpaca_close_position", {"symbol": "AAPL"}))["order"]
        assert closed["side"] == "sell"
        assert data(await paper_client.call_tool("alpaca_get_positions", {}))["positions"] == []

        after = data(await paper_client.call_tool("alpaca_get_account", {}))["account"]
        # Bought and sold 10 shares along the simulator's price path: cash is back near where it began.
        assert abs(Decimal(after["cash"]) - cash_before) < cash_before * Decimal("0.05")

        activities = data(await paper_client.call_tool("alpaca_get_activities", {"activity_types": ["FILL"]}))
        assert len(activities["activities"]) >= 2
        history = data(await paper_client.call_tool("alpaca_get_portfolio_history", {"period": "1W"}))
        assert history["history"]["timestamp"]


async def test_cancel_all_orders(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        price = await latest_price(paper_client, "MSFT")
        for qty in (1, 2, 3):  # three different orders (the same one again would ask for a person)
            data(
                await paper_client.call_tool(
                    "alpaca_place_order",
                    {
                        "symbol": "MSFT",
                        "side": "buy",
                        "qty": qty,
                        "type": "limit",
                        "limit_price": str((price / 2).quantize(Decimal("0.01"))),
                    },
                )
            )
        result = data(await paper_client.call_tool("alpaca_cancel_all_orders", {}))
        assert len(result["results"]) == 3
        assert data(await paper_client.call_tool("alpaca_list_orders", {"status": "open"}))["orders"] == []


async def test_bad_order_arguments_are_refused_before_alpaca(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        cases = [
            ({"symbol": "AAPL", "side": "buy"}, "exactly one of qty"),
            ({"symbol": "AAPL", "side": "buy", "qty": 1, "notional": 100}, "exactly one of qty"),
            ({"symbol": "AAPL", "side": "buy", "qty": 1, "type": "limit"}, "needs limit_price"),
            ({"symbol": "AAPL", "side": "buy", "qty": 1, "type": "stop"}, "needs stop_price"),
            (
                {"symbol": "AAPL", "side": "buy", "qty": 1, "type": "trailing_stop"},
                "trail_price or trail_percent",
            ),
            (
                {"symbol": "AAPL", "side": "buy", "notional": 100, "type": "limit", "limit_price": 1},
                "notional",
            ),
            ({"symbol": "AAPL", "side": "buy", "qty": 1, "order_class": "bracket"}, "take_profit"),
            ({"symbol": "AAPL", "side": "buy", "qty": -1}, "greater than 0"),
            ({"symbol": "../../v2/account", "side": "buy", "qty": 1}, "not a valid symbol"),
            ({"symbol": "AAPL", "side": "hold", "qty": 1}, "side"),
        ]
        for arguments, expected in cases:
            result = await paper_client.call_tool("alpaca_place_order", arguments)
            assert result.is_error, arguments
            assert expected in text_of(result), (arguments, text_of(result))
        assert simulator.orders(sim_account.api_key) == []


async def test_bracket_order_has_legs(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        price = await latest_price(paper_client, "SPY")
        order = data(
            await paper_client.call_tool(
                "alpaca_place_order",
                {
                    "symbol": "SPY",
                    "side": "buy",
                    "qty": 2,
                    "order_class": "bracket",
                    "time_in_force": "gtc",
                    "take_profit_limit_price": str((price * Decimal("1.5")).quantize(Decimal("0.01"))),
                    "stop_loss_stop_price": str((price * Decimal("0.5")).quantize(Decimal("0.01"))),
                },
            )
        )["order"]
        assert order["order_class"] == "bracket"
        assert len(order["legs"]) == 2


async def test_insufficient_buying_power_is_a_clear_tool_error(
    server_settings: Settings, sim_account: Any
) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        result = await paper_client.call_tool(
            "alpaca_place_order", {"symbol": "SPY", "side": "buy", "qty": 1_000_000}
        )
        assert result.is_error
        assert "403" in text_of(result)
        assert "buying power" in text_of(result)


async def test_unknown_order_is_a_clear_tool_error(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        result = await paper_client.call_tool(
            "alpaca_get_order", {"order_id": "00000000-0000-4000-8000-000000000000"}
        )
        assert result.is_error
        assert "404" in text_of(result)


def _live_key_id() -> str:
    return "AK" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(18))


async def test_live_credentials_cannot_trade_unless_enabled(
    server_settings: Settings, simulator: Any
) -> None:
    live = simulator.new_account(api_key=_live_key_id())
    async with Client(build_server(server_settings)) as client:
        stored = await client.call_tool(
            "store_credential",
            {"name": "live", "api_key": live.api_key, "secret_key": live.secret_key, "environment": "live"},
        )
        assert not stored.is_error, text_of(stored)
        # Reading a live account is allowed ...
        assert not (await client.call_tool("alpaca_get_account", {})).is_error
        # ... changing anything is not.
        refused = await client.call_tool("alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1})
        assert refused.is_error
        assert "ALPACA_VAULT_ALLOW_LIVE_TRADING=true" in text_of(refused)
        for name, args in [
            ("alpaca_cancel_all_orders", {}),
            ("alpaca_close_position", {"symbol": "AAPL"}),
            ("alpaca_cancel_order", {"order_id": "00000000-0000-4000-8000-000000000000"}),
            ("alpaca_replace_order", {"order_id": "00000000-0000-4000-8000-000000000000", "qty": 1}),
        ]:
            result = await client.call_tool(name, args)
            assert result.is_error and "live trading is disabled" in text_of(result), name
    assert simulator.orders(live.api_key) == []

    enabled = server_settings.model_copy(update={"allow_live_trading": True})
    async with Client(build_server(enabled)) as client:
        # A new live credential is read_only until its owner says otherwise (docs/guardrails.md) ...
        refused = await client.call_tool("alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1})
        assert refused.is_error and "'live' is read_only" in text_of(refused)
    await _owner_sets_trade(server_settings, "live")

    async def confirm(_ctx: Any, _params: Any) -> ElicitResult:
        return ElicitResult(action="accept", content={"confirm": True})

    # ... and then a person confirms each change in their client (confirm_live).
    async with Client(build_server(enabled), elicitation_callback=confirm) as client:
        placed = await client.call_tool("alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1})
        assert not placed.is_error, text_of(placed)
    assert len(simulator.orders(live.api_key)) == 1


async def _owner_sets_trade(settings: Settings, name: str) -> None:
    from alpaca_vault.db import Database
    from alpaca_vault.guard.store import PolicyStore
    from alpaca_vault.vault.credentials import CredentialService
    from alpaca_vault.vault.keyring import KeyRing

    assert settings.encryption_keys is not None
    db = Database.create(settings.effective_database_url)
    try:
        user = await CredentialService(
            db, KeyRing.from_string(settings.encryption_keys.get_secret_value())
        ).ensure_user(settings.user)
        await PolicyStore(db).update(user.id, name, {"mode": "trade"})
    finally:
        await db.dispose()


async def test_lost_order_response_leaves_exactly_one_order(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        simulator.set_fault(match="POST /v2/orders", lost_response="504", count=1)
        first = data(
            await paper_client.call_tool(
                "alpaca_place_order",
                {"symbol": "NVDA", "side": "buy", "qty": 1, "client_order_id": "agent-retry-1"},
            )
        )["order"]
        assert first["client_order_id"] == "agent-retry-1"
        assert len(simulator.orders(sim_account.api_key)) == 1

        again = data(
            await paper_client.call_tool(
                "alpaca_place_order",
                {"symbol": "NVDA", "side": "buy", "qty": 1, "client_order_id": "agent-retry-1"},
            )
        )["order"]
        assert again["id"] == first["id"]
        assert len(simulator.orders(sim_account.api_key)) == 1


async def test_rate_limited_get_is_waited_out(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        simulator.set_fault(match="GET /v2/account", status=429, retry_after=1, count=1)
        result = await paper_client.call_tool("alpaca_get_account", {})
        assert not result.is_error, text_of(result)


async def test_server_errors_on_a_get_are_retried(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        simulator.set_fault(match="GET /v2/positions", status=503, count=2)
        result = await paper_client.call_tool("alpaca_get_positions", {})
        assert not result.is_error, text_of(result)
