"""`alpaca-vault policy show|set|halt|resume` through the real console script, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from sqlalchemy import select

from alpaca_vault.db import Database
from alpaca_vault.db.models import AuditEvent
from alpaca_vault.db.rls import maintenance_session
from tests.cli.conftest import Cli

# Each test runs the console script several times (a new process each, as a user would): on a busy
# machine that takes longer than the default timeout.
pytestmark = pytest.mark.timeout(400)


def _add(cli: Cli, name: str, environment: str = "paper") -> None:
    prefix = "PK" if environment == "paper" else "AK"
    api, secret = f"{prefix}{secrets.token_hex(8).upper()}", f"SK{secrets.token_urlsafe(24)}"
    added = cli(
        "credentials", "add", name, "--environment", environment, "--no-validate", input=f"{api}\n{secret}\n"
    )
    assert added.returncode == 0, added.stderr


def _policy(cli: Cli, name: str) -> dict[str, Any]:
    shown = cli("policy", "show", name, "--json")
    assert shown.returncode == 0, shown.stderr
    policy: dict[str, Any] = json.loads(shown.stdout)
    return policy


async def test_defaults_paper_trades_without_limits_and_live_starts_read_only(cli: Cli) -> None:
    _add(cli, "paper-main")
    _add(cli, "live-main", "live")
    paper = _policy(cli, "paper-main")
    assert paper["mode"] == "trade" and paper["is_default"] is True
    assert paper["max_order_notional"] is None and paper["max_daily_notional"] is None
    assert paper["max_orders_per_day"] is None and paper["symbols"] is None
    assert paper["duplicate_window_seconds"] == 30
    assert paper["halted"] is False
    live = _policy(cli, "live-main")
    assert (live["mode"], live["confirm_live"], live["environment"]) == ("read_only", True, "live")

    readable = cli("policy", "show", "paper-main")
    assert readable.returncode == 0
    assert "Trading policy of 'paper-main' (paper; defaults for a new credential)" in readable.stdout
    assert "max order notional" in readable.stdout and "no limit" in readable.stdout
    assert "30 s" in readable.stdout


async def test_set_every_field_and_read_it_back(cli: Cli) -> None:
    _add(cli, "paper-main")
    result = cli(
        "policy", "set", "paper-main",
        "--mode", "trade",
        "--max-order-notional", "5000",
        "--max-daily-notional", "$20,000.50",
        "--max-orders-per-day", "10",
        "--max-orders-per-minute", "3",
        "--symbols", "aapl,msft,BTC/USD",
        "--deny-symbols", "GME",
        "--asset-classes", "us_equity,crypto",
        "--order-types", "market,limit",
        "--no-allow-short",
        "--no-allow-extended-hours",
        "--confirm-above-notional", "2500",
        "--no-confirm-live",
        "--duplicate-window", "60",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Updated the trading policy of 'paper-main'." in result.stdout
    policy = _policy(cli, "paper-main")
    assert policy["is_default"] is False
    assert policy["max_order_notional"] == "5000"
    assert policy["max_daily_notional"] == "20000.50"
    assert (policy["max_orders_per_day"], policy["max_orders_per_minute"]) == (10, 3)
    assert policy["symbols"] == ["AAPL", "BTC/USD", "MSFT"]
    assert policy["deny_symbols"] == ["GME"]
    assert policy["asset_classes"] == ["crypto", "us_equity"]
    assert policy["order_types"] == ["limit", "market"]
    assert (policy["allow_short"], policy["allow_extended_hours"], policy["confirm_live"]) == (
        False,
        False,
        False,
    )
    assert policy["confirm_above_notional"] == "2500"
    assert policy["duplicate_window_seconds"] == 60

    # 'none' / 'any' lift a limit again; options not given stay as they were.
    lifted = cli("policy", "set", "paper-main", "--max-order-notional", "none", "--symbols", "any")
    assert lifted.returncode == 0, lifted.stderr
    policy = _policy(cli, "paper-main")
    assert policy["max_order_notional"] is None and policy["symbols"] is None
    assert policy["max_orders_per_day"] == 10


BAD_VALUES = [
    (["--mode", "yolo"], "--mode takes read_only or trade"),
    (["--max-order-notional", "-5"], "--max-order-notional takes a dollar amount above 0"),
    (["--max-order-notional", "12.345"], "at most 2 decimals"),
    (["--max-daily-notional", "lots"], "--max-daily-notional takes a dollar amount"),
    (["--max-orders-per-day", "0"], "--max-orders-per-day takes a whole number from 1"),
    (["--max-orders-per-minute", "2.5"], "--max-orders-per-minute takes a whole number"),
    (["--symbols", "AAPL,../etc"], "is not a valid symbol"),
    (["--asset-classes", "us_equity,bonds"], "--asset-classes takes a comma-separated list of"),
    (["--order-types", "market,iceberg"], "--order-types takes a comma-separated list of"),
    (["--duplicate-window", "-1"], "--duplicate-window takes whole seconds from 0 to 86400"),
    (["--confirm-above-notional", "1e400"], "--confirm-above-notional takes a dollar amount"),
]


async def test_bad_values_get_a_clear_error_and_change_nothing(cli: Cli) -> None:
    _add(cli, "paper-main")
    for args, expected in BAD_VALUES:
        # A good value alongside the bad one: neither is applied.
        result = cli("policy", "set", "paper-main", "--max-orders-per-day", "7", *args)
        assert result.returncode == 1, args
        assert expected in result.stderr, (args, result.stderr)
        assert "Nothing was changed" in result.stderr
        assert "Traceback" not in result.stderr
    assert _policy(cli, "paper-main")["is_default"] is True


async def test_unknown_credential_and_user_and_empty_set_are_refused(cli: Cli) -> None:
    _add(cli, "paper-main")
    missing = cli("policy", "show", "nope")
    assert missing.returncode == 1
    assert "Credential 'nope' not found. Available: paper-main." in missing.stderr
    nobody = cli("policy", "show", "paper-main", "--user", "ghost")
    assert nobody.returncode == 1 and "user 'ghost' does not exist" in nobody.stderr
    empty = cli("policy", "set", "paper-main")
    assert empty.returncode == 1 and "nothing to change" in empty.stderr
    both = cli("policy", "halt", "paper-main", "--all")
    assert both.returncode == 1 and "give a credential name or --all" in both.stderr


async def test_halt_and_resume_one_or_all(cli: Cli) -> None:
    _add(cli, "paper-a")
    _add(cli, "paper-b")
    one = cli("policy", "halt", "paper-a")
    assert one.returncode == 0, one.stderr
    assert "Halted 'paper-a' (paper)" in one.stdout and "cancels and closes still work" in one.stdout
    assert (_policy(cli, "paper-a")["halted"], _policy(cli, "paper-b")["halted"]) == (True, False)

    everything = cli("policy", "halt", "--all")
    assert everything.returncode == 0, everything.stderr
    assert (_policy(cli, "paper-a")["halted"], _policy(cli, "paper-b")["halted"]) == (True, True)
    assert "HALTED" in cli("policy", "show", "paper-b").stdout

    resumed = cli("policy", "resume", "--all")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resumed 'paper-a' (paper)" in resumed.stdout
    assert (_policy(cli, "paper-a")["halted"], _policy(cli, "paper-b")["halted"]) == (False, False)

    # Every change is on the audit trail, written by the CLI in the change's own transaction.
    db = Database.create(cli.effective_url)
    try:
        async with maintenance_session(db) as session:
            events = (
                await session.execute(
                    select(
                        AuditEvent.action, AuditEvent.actor, AuditEvent.credential_name, AuditEvent.details
                    )
                    .where(AuditEvent.action == "policy.change")
                    .order_by(AuditEvent.seq)
                )
            ).all()
    finally:
        await db.dispose()
    changes = [(e.credential_name, e.details["changes"]) for e in events]
    assert changes == [
        ("paper-a", ["halted"]),
        ("paper-a", ["halted"]),
        ("paper-b", ["halted"]),
        ("paper-a", ["resumed"]),
        ("paper-b", ["resumed"]),
    ]
    assert {e.actor for e in events} == {"cli"}


async def test_live_set_to_trade_warns_about_the_server_wall(cli: Cli) -> None:
    _add(cli, "live-main", "live")
    result = cli("policy", "set", "live-main", "--mode", "trade")
    assert result.returncode == 0, result.stderr
    assert "ALPACA_VAULT_ALLOW_LIVE_TRADING=true" in result.stderr
    assert _policy(cli, "live-main")["mode"] == "trade"
