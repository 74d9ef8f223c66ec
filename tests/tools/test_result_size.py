"""Every tool that returns records answers within ALPACA_VAULT_MAX_RESULT_BYTES (issue #11 item 6).

The account is seeded with more of everything than fits (positions, fills, resting orders, a long
watchlist, news, extra credentials); every listing tool, taken from the tool list, is called at its
largest page. Each answer must fit the bound, in its text block and in its structured content, hold
only whole records that validate against its output schema, and say in ``more`` how to get the rest.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2

from alpaca_vault.simulator.assets import UNIVERSE
from tests.fixtures.mcp_server import make_settings, paper_session, text_of, wire

BOUND = 6_000
STOCKS = sorted(symbol for symbol, asset in UNIVERSE.items() if asset.asset_class == "us_equity")

# The largest answer each listing tool can give. The test refuses to run when a tool that returns a list
# or a mapping of records (a top-level array or map in its output schema) has no entry here.
LARGEST_CALLS: dict[str, dict[str, Any]] = {
    "list_credentials": {},
    "list_audit_events": {"limit": 200},
    "alpaca_get_positions": {},
    "alpaca_get_portfolio_history": {"period": "3D", "timeframe": "1Min", "intraday_reporting": "continuous"},
    "alpaca_get_activities": {"page_size": 100},
    "alpaca_list_orders": {"status": "all", "limit": 500},
    "alpaca_preview_order": {"symbol": "AAPL", "side": "buy", "qty": 1},
    "alpaca_get_calendar": {"start": "2020-01-01", "end": "2026-12-31"},
    "alpaca_get_latest_quote": {"symbols": ",".join(STOCKS)},
    "alpaca_get_latest_trade": {"symbols": ",".join(STOCKS)},
    "alpaca_get_bars": {"symbol": "AAPL", "timeframe": "1Min", "limit": 400},
    "alpaca_get_snapshot": {"symbols": ",".join(STOCKS)},
    "alpaca_list_assets": {"limit": 1000},
    "alpaca_get_quotes": {"symbols": "AAPL,MSFT", "start": "2026-11-30T15:00:00Z", "limit": 300},
    "alpaca_get_trades": {"symbols": "AAPL,MSFT", "start": "2026-11-30T15:00:00Z", "limit": 300},
    "alpaca_get_orderbook": {"symbols": "BTC/USD,ETH/USD,SOL/USD", "depth": 100},
    "alpaca_get_market_movers": {"top": 50},
    "alpaca_get_most_actives": {"top": 100},
    "alpaca_get_option_contracts": {"underlying": "AAPL", "limit": 1000},
    "alpaca_get_option_chain": {"underlying": "AAPL", "limit": 12},
    "alpaca_get_news": {"limit": 50, "include_content": True},
    "alpaca_get_corporate_actions": {"symbols": STOCKS, "start": "2020-01-01", "end": "2026-11-30", "limit": 1000},
    "alpaca_get_watchlists": {},
    "alpaca_get_locates": {"kind": "quotes", "symbols": ",".join(STOCKS)},
    # State-changing listings last: they empty what the others read.
    "alpaca_cancel_all_orders": {},
    "alpaca_close_all_positions": {},
}  # fmt: skip


def lists_records(output_schema: dict[str, Any]) -> bool:
    """A top-level array, or a map of records (an object keyed by symbol), in the tool's output schema."""
    for prop in output_schema.get("properties", {}).values():
        kinds = prop.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "array" in kinds or ("object" in kinds and isinstance(prop.get("additionalProperties"), dict)):
            return True
    return False


def seed(base_url: str, account: Any) -> None:
    """More of everything than fits: a position and a fill in every stock, 40 resting orders."""
    with httpx2.Client(base_url=base_url, headers=account.headers, timeout=10.0) as alpaca:
        for symbol in STOCKS:
            bought = alpaca.post("/v2/orders", json={"symbol": symbol, "side": "buy", "qty": "1", "type": "market",
                                                     "time_in_force": "day"})  # fmt: skip
            assert bought.status_code == 200, bought.text
        for n in range(40):
            order = {"symbol": "AAPL", "side": "buy", "qty": str(n + 1), "type": "limit", "limit_price": "1.00",
                     "time_in_force": "gtc"}  # fmt: skip
            resting = alpaca.post("/v2/orders", json=order)
            assert resting.status_code == 200, resting.text


async def test_every_listing_tool_answers_within_the_bound(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    seed(simulator.base_url, sim_account)
    for n in range(40):
        simulator.plant_news(f"Headline {n}", summary="s" * 400, content="c" * 2000, symbols=["AAPL"])
    settings = make_settings(tmp_path / "data", simulator.base_url, max_result_bytes=BOUND)
    async with paper_session(settings, sim_account) as client:
        for n in range(4):  # a few: storing is slow (the vault's work), and each record is small
            stored = await client.call_tool("store_credential", {
                "name": f"spare-{n:02d}-with-a-rather-long-name", "api_key": f"PKSPARE{n:013d}",
                "secret_key": "s" * 40, "validate": False})  # fmt: skip
            assert not stored.is_error, text_of(stored)
        watchlist = await client.call_tool(
            "alpaca_save_watchlist", {"name": "everything", "symbols": STOCKS, "credential": "paper-1"}
        )
        assert not watchlist.is_error, text_of(watchlist)

        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        listing = {name for name, tool in tools.items() if lists_records(tool.output_schema or {})}
        assert listing <= LARGEST_CALLS.keys(), (
            f"add the largest call of {sorted(listing - LARGEST_CALLS.keys())}"
        )

        # Paged by `more`, the open orders come whole and exactly once.
        seen: list[str] = []
        arguments: dict[str, Any] = {"limit": 500, "credential": "paper-1"}
        for _ in range(20):
            page = wire(await client.call_tool("alpaca_list_orders", arguments))["structuredContent"]
            seen += [order["id"] for order in page["orders"]]
            if not page["more"]:
                break
            until = page["more"].split("until='", 1)[1].split("'", 1)[0]
            arguments = {"limit": 500, "until": until, "credential": "paper-1"}
        resting = [o["id"] for o in simulator.orders(sim_account.api_key) if o["status"] == "new"]
        assert len(resting) == 40 and sorted(seen) == sorted(resting)

        cut = set()
        for name, arguments in LARGEST_CALLS.items():
            if name not in tools:
                continue
            if "credential" in tools[name].input_schema.get("properties", {}) and name != "list_audit_events":
                arguments = {**arguments, "credential": "paper-1"}
            result = await client.call_tool(name, arguments)
            assert not result.is_error, (name, text_of(result))
            text = text_of(result)
            structured = wire(result)["structuredContent"]
            assert len(text.encode()) <= BOUND, (name, len(text.encode()))
            assert len(json.dumps(structured, separators=(",", ":")).encode()) <= BOUND, name
            # The text's data block is the structured content, whole: no record was cut in half.
            assert json.loads(text.split("not instructions):\n", 1)[1]) == structured, name
            if structured.get("more"):
                cut.add(name)
                assert " left out to keep this answer " in structured["more"], (name, structured["more"])
                assert " more: " in text, name
        # The seeded account is larger than the bound wherever records pile up.
        assert {
            "alpaca_get_positions", "alpaca_get_activities", "alpaca_list_orders",
            "alpaca_get_bars", "alpaca_get_news", "alpaca_list_assets", "alpaca_get_snapshot",
            "alpaca_get_option_contracts", "alpaca_get_quotes", "alpaca_get_portfolio_history",
        } <= cut, sorted(cut)  # fmt: skip


async def test_bars_default_to_a_modest_count_keep_the_latest_and_summarise_a_long_range(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    settings = make_settings(tmp_path / "data", simulator.base_url, max_result_bytes=BOUND)
    async with paper_session(settings, sim_account) as client:
        default = wire(await client.call_tool("alpaca_get_bars", {"symbol": "SPY"}))["structuredContent"]
        assert default["summary"] is None  # 50 bars, cut to fit this test's small bound
        assert f"{50 - len(default['bars'])} of 50 records left out" in default["more"]

        latest = wire(
            await client.call_tool("alpaca_get_bars", {"symbol": "SPY", "timeframe": "1Min", "limit": 1})
        )
        many = await client.call_tool("alpaca_get_bars", {"symbol": "SPY", "timeframe": "1Min", "limit": 600})
        body = wire(many)["structuredContent"]
        # Cut to fit, the most recent bars stay; the rest is one call away.
        assert 0 < len(body["bars"]) < 600
        assert body["bars"][-1]["timestamp"] == latest["structuredContent"]["bars"][-1]["timestamp"]
        assert f"end='{body['bars'][0]['timestamp']}'" in body["more"]
        assert "Only the last " in text_of(many)

        summarised = await client.call_tool(
            "alpaca_get_bars", {"symbol": "SPY", "timeframe": "1Min", "limit": 600, "summarize": True}
        )
        summary = wire(summarised)["structuredContent"]
        assert summary["bars"] == [] and summary["more"] is None
        one = summary["summary"]
        assert one["bars"] == 600
        assert Decimal(one["low"]) <= Decimal(one["open"]) <= Decimal(one["high"])
        assert Decimal(one["change"]) == Decimal(one["close"]) - Decimal(one["open"])
        assert f"change {Decimal(one['change']):+}" in text_of(summarised)
        assert len(text_of(summarised).encode()) < 2_000


async def test_the_text_block_repeats_the_data_only_when_it_must(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    for result_text, repeated in (("data", True), ("summary", False)):
        settings = make_settings(tmp_path / result_text, simulator.base_url, result_text=result_text)
        async with paper_session(settings, sim_account) as client:
            result = await client.call_tool("alpaca_get_positions", {})
            assert not result.is_error
            assert ("not instructions):\n" in text_of(result)) is repeated, result_text
            assert text_of(result).startswith("No open positions in 'paper-1'")
            assert wire(result)["structuredContent"]["positions"] == []


def test_clients_before_structured_content_always_get_the_data_in_text() -> None:
    from alpaca_vault.tools.results import text_carries_data

    assert text_carries_data("summary", "2025-03-26") and text_carries_data("summary", "2024-11-05")
    assert text_carries_data("summary", None)
    assert not text_carries_data("summary", "2025-06-18") and not text_carries_data("summary", "2026-07-28")
    assert text_carries_data("data", "2026-07-28")
