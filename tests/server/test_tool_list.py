"""The tool list as a client receives it: names, schemas, annotations. A changed contract is a visible diff.

Regenerate the snapshot after a deliberate change with:
    UPDATE_SNAPSHOTS=1 make test PYTEST_ARGS=tests/server/test_tool_list.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mcp import Client

from alpaca_vault.server.app import build_server
from tests.fixtures.mcp_server import make_settings

SNAPSHOT = Path(__file__).parent / "snapshots" / "tool_list.json"

DESIGN_TOOL_NAMES = {
    "store_credential",
    "list_credentials",
    "validate_credential",
    "update_credential",
    "delete_credential",
    "get_trading_policy",
    "list_audit_events",
    "alpaca_get_account",
    "alpaca_get_positions",
    "alpaca_get_position",
    "alpaca_close_position",
    "alpaca_list_orders",
    "alpaca_get_order",
    "alpaca_preview_order",
    "alpaca_place_order",
    "alpaca_replace_order",
    "alpaca_cancel_order",
    "alpaca_cancel_all_orders",
    "alpaca_get_clock",
    "alpaca_get_calendar",
    "alpaca_get_asset",
    "alpaca_get_latest_quote",
    "alpaca_get_latest_trade",
    "alpaca_get_bars",
    "alpaca_get_snapshot",
    "alpaca_get_portfolio_history",
    "alpaca_get_activities",
    # issue #15
    "alpaca_get_account_config",
    "alpaca_update_account_config",
    "alpaca_close_all_positions",
    "alpaca_exercise_option",
    "alpaca_list_assets",
    "alpaca_get_quotes",
    "alpaca_get_trades",
    "alpaca_get_orderbook",
    "alpaca_get_option_contracts",
    "alpaca_get_option_chain",
    "alpaca_get_news",
    "alpaca_get_corporate_actions",
    "alpaca_get_market_movers",
    "alpaca_get_most_actives",
    "alpaca_get_watchlists",
    "alpaca_save_watchlist",
    "alpaca_delete_watchlist",
    # issue #15: short-sale locates (new names: the integrator adds them to shared/DESIGN.md)
    "alpaca_get_locates",
    "alpaca_request_locate",
}


async def _tool_list(tmp_path: Path, **overrides: object) -> list[dict[str, object]]:
    settings = make_settings(tmp_path, "http://127.0.0.1:9", **overrides)
    async with Client(build_server(settings)) as client:
        listed = await client.list_tools()
    return [json.loads(tool.model_dump_json(by_alias=True, exclude_none=True)) for tool in listed.tools]


async def test_tool_list_matches_the_snapshot(tmp_path: Path) -> None:
    # The default: keys are entered on a one-time page, so no tool offers api_key/secret_key (#12).
    tools = await _tool_list(tmp_path, allow_secrets_in_arguments=False)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(tools, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert tools == expected


async def test_every_design_tool_is_listed_with_truthful_annotations(tmp_path: Path) -> None:
    tools = {t["name"]: t for t in await _tool_list(tmp_path)}
    assert set(tools) == DESIGN_TOOL_NAMES
    for name, tool in tools.items():
        annotations = tool["annotations"]
        assert isinstance(annotations, dict)
        assert tool["outputSchema"], name
        assert tool["description"], name
        reads_only = name.startswith(("alpaca_get", "get_")) or name in {
            "alpaca_list_orders",
            "alpaca_list_assets",
            "list_credentials",
            "alpaca_preview_order",
            "list_audit_events",
        }
        assert annotations["readOnlyHint"] is reads_only, name
        if name in {
            "alpaca_place_order",
            "alpaca_cancel_order",
            "alpaca_close_position",
            "delete_credential",
            "alpaca_close_all_positions",
            "alpaca_exercise_option",
            "alpaca_update_account_config",
            "alpaca_delete_watchlist",
            "alpaca_request_locate",
        }:
            assert annotations["destructiveHint"] is True, name
        assert annotations["openWorldHint"] is (
            name not in {"list_credentials", "delete_credential", "get_trading_policy", "list_audit_events"}
        ), name
    # Secrets are write-only inputs and never outputs.
    store = tools["store_credential"]
    secret_schema = store["inputSchema"]["properties"]["secret_key"]  # type: ignore[index]
    arms = secret_schema.get(
        "anyOf", [secret_schema]
    )  # optional since #12: the key entry page is the default
    assert any(arm.get("writeOnly") is True or arm.get("format") == "password" for arm in arms)
    for tool in tools.values():
        assert "secret_key" not in json.dumps(tool["outputSchema"])


async def test_toolsets_switch_whole_groups_off(tmp_path: Path) -> None:
    names = {t["name"] for t in await _tool_list(tmp_path, toolsets="account,market")}
    assert "alpaca_get_account" in names and "alpaca_get_bars" in names
    assert not any(n.startswith(("alpaca_place", "alpaca_cancel", "store_")) for n in names)


async def test_new_toolsets_switch_off_and_the_count_stays_in_budget(tmp_path: Path) -> None:
    everything = {t["name"] for t in await _tool_list(tmp_path)}
    assert len(everything) <= 48  # issue #15: the whole of Alpaca in at most 48 tools
    names = {t["name"] for t in await _tool_list(tmp_path, toolsets="account,market")}
    assert not names & {"alpaca_get_option_chain", "alpaca_get_news", "alpaca_get_watchlists"}
    assert "alpaca_update_account_config" not in names  # changes state: it belongs to 'trading'
    only = {t["name"] for t in await _tool_list(tmp_path, toolsets="options,news,watchlists")}
    assert only == {
        "alpaca_get_option_contracts",
        "alpaca_get_option_chain",
        "alpaca_get_news",
        "alpaca_get_corporate_actions",
        "alpaca_get_watchlists",
        "alpaca_save_watchlist",
        "alpaca_delete_watchlist",
    }


async def test_by_default_no_tool_offers_a_key_or_secret_argument(tmp_path: Path) -> None:
    # #12: keys go through the one-time entry page unless ALPACA_VAULT_ALLOW_SECRETS_IN_ARGUMENTS=true.
    tools = {t["name"]: t for t in await _tool_list(tmp_path, allow_secrets_in_arguments=False)}
    for tool in tools.values():
        properties = tool["inputSchema"].get("properties", {})  # type: ignore[union-attr]
        assert not {"api_key", "secret_key"} & set(properties), tool["name"]
    assert "replace_keys" in tools["update_credential"]["inputSchema"]["properties"]  # type: ignore[index]
    allowed = {t["name"]: t for t in await _tool_list(tmp_path, allow_secrets_in_arguments=True)}
    assert {"api_key", "secret_key"} <= set(allowed["store_credential"]["inputSchema"]["properties"])  # type: ignore[index]


# A fresh process that loads the broker's models before the tools, as a server does once its runtime
# has opened (the tool list cache of the next start is written then).
BROKER_MODELS_FIRST = """
import json, sys
import alpaca_vault.broker.models  # noqa: F401
import anyio
from mcp import Client
from alpaca_vault.server.app import build_server
from alpaca_vault.server.settings import Settings

async def listed():
    settings = Settings(data_dir=sys.argv[1], allow_secrets_in_arguments=False, encryption_keys="k" * 43)
    async with Client(build_server(settings)) as client:
        return (await client.list_tools()).tools

tools = anyio.run(listed)
print(json.dumps([json.loads(t.model_dump_json(by_alias=True, exclude_none=True)) for t in tools]))
"""


def test_the_tool_list_does_not_depend_on_which_modules_were_loaded_first(tmp_path: Path) -> None:
    # typing caches `Literal[...] | None` by value set: a broker type listing the same choices in
    # another order made the published enum follow whichever was imported first.
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", BROKER_MODELS_FIRST, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(SNAPSHOT.read_text())
