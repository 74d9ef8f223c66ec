"""Issue #15 coverage through the MCP protocol: short-sale locates (quotes, request, listing, the guard),
fixed-income quotes by ISIN, and the option exchange codes, against the simulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx2

from alpaca_vault.server.settings import Settings
from tests.fixtures.mcp_server import paper_session, text_of
from tests.guard.test_guard_protocol import owner, set_policy
from tests.tools.test_trading_tools import data


def error_text(result: Any) -> str:
    assert result.is_error, text_of(result)
    return text_of(result)


def sim_locates(simulator: Any, account: Any) -> list[dict[str, Any]]:
    """The account's locates as the simulator holds them (its Alpaca API, not our tools)."""
    answer = httpx2.get(f"{simulator.base_url}/v1/locates", headers=account.headers, timeout=5)
    assert answer.status_code == 200, answer.text
    locates: list[dict[str, Any]] = answer.json()["locates"]
    return locates


async def test_locate_quotes_request_listing_and_pages(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        request_tool, read_tool = tools["alpaca_request_locate"], tools["alpaca_get_locates"]
        assert request_tool.annotations and request_tool.annotations.destructive_hint is True
        assert (
            request_tool.annotations.read_only_hint is False
            and request_tool.annotations.idempotent_hint is False
        )
        assert read_tool.annotations and read_tool.annotations.read_only_hint is True

        quoted = data(await client.call_tool("alpaca_get_locates", {"kind": "quotes", "symbols": "gme,AAPL"}))
        assert [(q["symbol"], q["available_qty"], Decimal(q["price"])) for q in quoted["quotes"]] == [
            ("GME", 5000, Decimal("0.045"))
        ]
        assert [(e["symbol"], e["code"]) for e in quoted["unquoted"]] == [("AAPL", "easy_to_borrow")]

        cash_before = Decimal(data(await client.call_tool("alpaca_get_account", {}))["account"]["cash"])
        placed = await client.call_tool(
            "alpaca_request_locate", {"symbol": "GME", "qty": 200, "limit_price": "0.05"}
        )
        locate = data(placed)["locate"]
        assert (
            locate["status"] == "active"
            and locate["located_qty"] == 200
            and Decimal(locate["total_fee"]) == 9
        )
        assert "active" in text_of(placed) and "$9.00" in text_of(placed)
        cash_after = Decimal(data(await client.call_tool("alpaca_get_account", {}))["account"]["cash"])
        assert cash_before - cash_after == Decimal(9)

        # A fee above the caller's limit: Alpaca answers a rejected locate, and nothing is charged.
        rejected = data(
            await client.call_tool(
                "alpaca_request_locate", {"symbol": "GME", "qty": 100, "limit_price": "0.01"}
            )
        )["locate"]
        assert rejected["status"] == "rejected" and rejected.get("total_fee") is None
        assert [loc["id"] for loc in sim_locates(simulator, sim_account)] == [rejected["id"], locate["id"]]

        first = data(await client.call_tool("alpaca_get_locates", {"limit": 1}))
        assert [loc["id"] for loc in first["locates"]] == [rejected["id"]] and first["next_page_token"]
        second = data(
            await client.call_tool("alpaca_get_locates", {"limit": 1, "page_token": first["next_page_token"]})
        )
        assert [loc["id"] for loc in second["locates"]] == [locate["id"]] and second[
            "next_page_token"
        ] is None
        active = data(await client.call_tool("alpaca_get_locates", {"status": "active", "symbols": "GME"}))
        assert [loc["id"] for loc in active["locates"]] == [locate["id"]]
        one = data(await client.call_tool("alpaca_get_locates", {"locate_id": locate["id"]}))
        assert Decimal(one["locates"][0]["located_price"]) == Decimal("0.045")
        quoted = data(await client.call_tool("alpaca_get_locates", {"kind": "quotes", "symbols": "GME"}))
        assert quoted["quotes"][0]["available_qty"] == 4800  # what this account located today is taken

        # Refusals: ours before sending (bounds, lots, markets), Alpaca's for an easy-to-borrow stock.
        before = len(sim_locates(simulator, sim_account))
        for arguments, expected in [
            ({"symbol": "GME", "qty": 150}, "round lots of 100"),
            ({"symbol": "GME", "qty": 50}, "qty"),
            ({"symbol": "BTC/USD", "qty": 100}, "stocks"),
            ({"symbol": "GME", "qty": 100, "limit_price": "-1"}, "limit_price"),
            ({"symbol": "GME", "quantity": 100}, "qty"),
            ({"symbol": "AAPL", "qty": 100}, "easy-to-borrow"),
        ]:
            assert expected in error_text(await client.call_tool("alpaca_request_locate", arguments)), (
                arguments
            )
        for arguments, expected in [
            ({"kind": "quotes"}, "needs symbols"),
            ({"kind": "quotes", "symbols": "GME", "status": "active"}, "takes only symbols"),
            ({"symbols": "GME,AMC"}, "one symbol"),
            ({"symbols": "BTC/USD"}, "stocks only"),
            ({"locate_id": "not-a-uuid"}, "locate id"),
            ({"locate_id": "7d3c9f7e-8a49-4a51-9a0e-6c1f0b7b2f10"}, "404"),
        ]:
            assert expected in error_text(await client.call_tool("alpaca_get_locates", arguments)), arguments
        assert len(sim_locates(simulator, sim_account)) == before


async def test_a_locate_is_refused_while_read_only_or_halted(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    """A locate reduces no risk: the guard judges it like a new order (mode and kill switch)."""
    async with paper_session(server_settings, sim_account) as client:
        await set_policy(server_settings, "paper-1", mode="read_only")
        refused = await client.call_tool("alpaca_request_locate", {"symbol": "GME", "qty": 100})
        assert "is read_only" in error_text(refused)
        await set_policy(server_settings, "paper-1", mode="trade")
        async with owner(server_settings) as (store, user_id):
            await store.set_halted(user_id, None, True)
        assert "is halted" in error_text(
            await client.call_tool("alpaca_request_locate", {"symbol": "GME", "qty": 100})
        )
        assert sim_locates(simulator, sim_account) == []
        # Reading locates still works while halted.
        assert data(await client.call_tool("alpaca_get_locates", {}))["locates"] == []
        async with owner(server_settings) as (store, user_id):
            await store.set_halted(user_id, None, False)
        placed = data(await client.call_tool("alpaca_request_locate", {"symbol": "GME", "qty": 100}))
        assert placed["locate"]["status"] == "active"
        # The audit trail: both refusals (their rules) and the request, recorded before it was sent.
        events = data(await client.call_tool("list_audit_events", {}))["events"]
        requested = [(e["tool"], e["details"]) for e in events if e["action"] == "locate.request"]
        assert requested == [("alpaca_request_locate", {"symbol": "GME", "qty": 100})]
        refusals = [e["details"]["policy_rule"] for e in events if e["action"] == "guard.refused"]
        assert sorted(map(tuple, refusals)) == [("halted",), ("mode",)], refusals


async def test_fixed_income_quotes_by_isin_and_option_exchange_codes(
    server_settings: Settings, sim_account: Any
) -> None:
    async with paper_session(server_settings, sim_account) as client:
        answer = data(
            await client.call_tool("alpaca_get_latest_quote", {"symbols": "US912797SX61,AAPL,US0378331005"})
        )
        bill = answer["quotes"]["US912797SX61"]
        assert Decimal(bill["bid_price"]) < Decimal(bill["ask_price"]) < 100  # percent of par
        assert Decimal(bill["ask_yield_to_maturity"]) > 0 and bill["bid_min_size"] == "1000"
        assert "AAPL" in answer["quotes"] and answer["missing"] == [
            "US0378331005"
        ]  # an ISIN it does not quote
        chain = data(await client.call_tool("alpaca_get_option_chain", {"underlying": "AAPL", "limit": 5}))
        assert chain["exchanges"]["C"].startswith("CBOE")
        assert all(len(code) <= 8 for code in chain["exchanges"])


async def test_a_locate_retried_after_no_answer_with_its_request_id_is_charged_once(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    """An agent that retries a locate whose answer was lost must not pay for a second one."""
    async with paper_session(server_settings, sim_account) as client:
        cash_before = Decimal(data(await client.call_tool("alpaca_get_account", {}))["account"]["cash"])
        simulator.set_fault(match="POST /v1/locates", lost_response="504", count=50)
        try:
            lost = error_text(await client.call_tool("alpaca_request_locate", {"symbol": "GME", "qty": 100}))
        finally:
            simulator.clear_faults()
        assert "unknown" in lost and "request_id='" in lost
        request_id = lost.split("request_id='", 1)[1].split("'", 1)[0]
        assert len(sim_locates(simulator, sim_account)) == 1  # Alpaca made it; the answer was lost

        again = await client.call_tool(
            "alpaca_request_locate", {"symbol": "GME", "qty": 100, "request_id": request_id}
        )
        assert data(again)["request_id"] == request_id and data(again)["locate"]["status"] == "active"
        assert len(sim_locates(simulator, sim_account)) == 1
        cash_after = Decimal(data(await client.call_tool("alpaca_get_account", {}))["account"]["cash"])
        assert cash_before - cash_after == Decimal(data(again)["locate"]["total_fee"])
