"""--state-file keeps the books across restarts; accounts come from a file or the environment, not argv."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import CreateWatchlistRequest, LimitOrderRequest, MarketOrderRequest

from alpaca_vault.simulator import AccountSpec, SimulatorConfig, create_app, serve_in_thread
from alpaca_vault.simulator.config import parse_accounts

SECRET = "state-file-secret-0123456789"


def _client(base_url: str) -> TradingClient:
    return TradingClient("PKSTATE", SECRET, paper=True, url_override=base_url)


def test_books_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sim" / "state.json"
    config = SimulatorConfig(
        accounts=[AccountSpec(api_key="PKSTATE", secret_key=SECRET)], state_file=str(path)
    )
    with serve_in_thread(create_app(config)) as base_url:
        trading = _client(base_url)
        bought = trading.submit_order(
            MarketOrderRequest(symbol="AAPL", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
        )
        resting = trading.submit_order(
            LimitOrderRequest(
                symbol="MSFT", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=1
            )
        )
        trading.create_watchlist(CreateWatchlistRequest(name="kept", symbols=["SPY"]))
        cash = trading.get_account().cash
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the accounts' keys
    with serve_in_thread(create_app(config)) as base_url:
        trading = _client(base_url)
        assert trading.get_account().cash == cash
        assert [(p.symbol, p.qty) for p in trading.get_all_positions()] == [("AAPL", "3")]
        assert trading.get_order_by_id(bought.id).status == OrderStatus.FILLED
        assert [o.id for o in trading.get_orders()] == [resting.id]  # still working
        assert [w.name for w in trading.get_watchlists()] == ["kept"]
        # Reset goes back to the start configuration, file included.
        httpx2.post(f"{base_url}/_simulator/reset")
        assert trading.get_all_positions() == [] and Decimal(trading.get_account().cash) == 100000


def test_without_a_state_file_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with serve_in_thread(create_app(SimulatorConfig())) as base_url:
        httpx2.post(f"{base_url}/_simulator/accounts", json={})
    assert list(tmp_path.iterdir()) == []


def test_parse_accounts_lines_commas_comments_and_errors() -> None:
    specs = parse_accounts("PKA:sa\n# a comment\nPKB:sb:5000, PKC:sc  # trailing\n")
    assert [(s.api_key, s.cash) for s in specs] == [
        ("PKA", Decimal(100000)),
        ("PKB", Decimal(5000)),
        ("PKC", Decimal(100000)),
    ]
    for bad, text in (
        ("PKA", "expected KEY:SECRET"),
        ("PKA:s:lots", "is not a number"),
        ("PKA:s:-1", "cash must"),
    ):
        try:
            parse_accounts(bad)
        except ValueError as error:
            assert text in str(error) and "account 1" in str(error)
        else:
            raise AssertionError(bad)


def test_cli_reads_accounts_from_a_file_and_the_environment(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.txt"
    accounts.write_text(f"PKFILE:{SECRET}:2500\n", encoding="utf-8")
    env = {**os.environ, "ALPACA_SIMULATOR_ACCOUNTS": f"PKENV:{SECRET}-env"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alpaca_vault.server.cli",
            "simulator",
            "--port",
            "0",
            "--accounts-file",
            str(accounts),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if "point alpaca-vault at it" in line:
                break
        banner = "".join(lines)
        assert SECRET not in banner
        assert "2 accounts" in banner
        url = banner.split(" on ", 1)[1].split()[0]
        by_file = httpx2.get(
            f"{url}/v2/account", headers={"APCA-API-KEY-ID": "PKFILE", "APCA-API-SECRET-KEY": SECRET}
        )
        assert by_file.json()["cash"] == "2500.00"
        by_env = httpx2.get(
            f"{url}/v2/account", headers={"APCA-API-KEY-ID": "PKENV", "APCA-API-SECRET-KEY": f"{SECRET}-env"}
        )
        assert by_env.status_code == 200
        assert SECRET not in " ".join(process.args)  # type: ignore[arg-type]
    finally:
        process.terminate()
        process.wait(timeout=10)
