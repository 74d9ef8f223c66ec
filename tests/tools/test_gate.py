"""The gate: every tool call runs resolve -> intent checks -> hooks -> unseal -> broker -> after-hooks,
hooks see the call's facts (never a secret), and raising in a hook refuses the call before anything
is unsealed or sent. Driven through the real SDK Client against the simulator on loopback."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from alpaca_vault.guard import Intent
from alpaca_vault.server.app import build_server
from alpaca_vault.server.settings import Settings
from alpaca_vault.tools.gate import GateHooks, ToolCall
from alpaca_vault.tools.registry import TOOLS
from alpaca_vault.vault.exposure import exposed_values
from tests.fixtures.mcp_server import text_of, wire


class Seen:
    """What the hooks saw, in order, with the simulator's view at that moment."""

    def __init__(self, simulator: Any, api_key: str) -> None:
        self.events: list[tuple[str, ToolCall, dict[str, Any]]] = []
        self._simulator = simulator
        self._api_key = api_key

    def hooks(self, **only: Any) -> GateHooks:
        hooks = GateHooks()

        async def before(call: ToolCall) -> None:
            self.events.append(("before", call, self._facts(call)))

        async def after(call: ToolCall) -> None:
            self.events.append(("after", call, self._facts(call)))

        hooks.add_before_send(before, **only)
        hooks.add_after_call(after, **only)
        return hooks

    def _facts(self, call: ToolCall) -> dict[str, Any]:
        return {
            "orders_at_alpaca": len(self._simulator.orders(self._api_key)),
            "unsealed": set(exposed_values()),  # what the vault had unsealed in this call so far
            "outcome": call.outcome,
            "error": call.error,
        }


async def store(client: Client, account: Any, name: str = "paper-1") -> None:
    stored = await client.call_tool(
        "store_credential", {"name": name, "api_key": account.api_key, "secret_key": account.secret_key}
    )
    assert not stored.is_error, text_of(stored)


async def test_an_order_passes_hooks_before_anything_is_unsealed_or_sent(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    seen = Seen(simulator, sim_account.api_key)
    async with Client(build_server(server_settings, gate_hooks=seen.hooks())) as client:
        await store(client, sim_account)
        placed = await client.call_tool("alpaca_place_order", {"symbol": "aapl", "side": "buy", "qty": 2})
    order = wire(placed)["structuredContent"]["order"]

    stages = [(stage, call.tool) for stage, call, _ in seen.events]
    assert stages == [
        ("before", "store_credential"),
        ("after", "store_credential"),
        ("before", "alpaca_place_order"),
        ("after", "alpaca_place_order"),
    ]
    (_, stored, stored_facts), _, (_, before, facts), (_, after, after_facts) = seen.events
    # A secret argument never reaches a hook; the validated non-secret ones do.
    assert stored.intent is Intent.CREDENTIAL_STORE and stored.credential is None
    assert stored.arguments == {"name": "paper-1", "environment": "paper", "validate": True}
    assert sim_account.secret_key not in repr(stored.arguments) and sim_account.secret_key not in repr(stored)

    # Before: resolved, checked, client_order_id minted, nothing unsealed, nothing at Alpaca.
    assert before is after  # one call object through the whole gate
    assert before.intent is Intent.PLACE and before.actor.kind == "stdio"
    assert before.credential is not None and before.credential.name == "paper-1"
    assert before.credential.environment == "paper"
    assert before.arguments["symbol"] == "aapl" and before.arguments["credential"] is None
    assert facts["orders_at_alpaca"] == 0 and facts["unsealed"] == set()
    assert before.client_order_id and before.order is not None
    assert before.order.client_order_id == before.client_order_id
    # The order Alpaca received carries the id the hook saw; the after-hook sees the broker's answer.
    assert order["client_order_id"] == before.client_order_id
    assert after_facts["orders_at_alpaca"] == 1 and after_facts["error"] is None
    assert after_facts["outcome"].id == order["id"]
    assert stored_facts["error"] is None


async def test_a_raising_hook_refuses_the_call_and_nothing_is_sent(
    server_settings: Settings, sim_account: Any, simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class PolicyRefusal(Exception):
        pass  # no row in tools/errors.py: the gate must still refuse (fail closed)

    hooks = GateHooks()
    after: list[ToolCall] = []

    async def refuse(call: ToolCall) -> None:
        raise PolicyRefusal(f"internal detail {call.client_order_id}")

    async def record(call: ToolCall) -> None:
        after.append(call)

    hooks.add_before_send(refuse, intents={Intent.PLACE, Intent.CANCEL_ALL})
    hooks.add_after_call(record)
    async with Client(build_server(server_settings, gate_hooks=hooks)) as client:
        await store(client, sim_account)
        read = await client.call_tool("alpaca_get_account", {})  # not an intent the hook covers
        assert not read.is_error, text_of(read)
        with caplog.at_level(logging.ERROR, logger="alpaca_vault.tools"):
            refused = await client.call_tool(
                "alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1}
            )
    text = text_of(refused).removeprefix("Error executing tool alpaca_place_order: ")
    assert refused.is_error
    assert text.startswith("alpaca-vault hit an internal error in alpaca_place_order")
    assert "internal detail" not in text  # a bug is not dressed as advice
    assert simulator.orders(sim_account.api_key) == []
    assert any("internal error in alpaca_place_order" in r.getMessage() for r in caplog.records)
    assert any("PolicyRefusal" in (r.exc_text or "") for r in caplog.records)  # the traceback is logged
    # After-call hooks still run, and see why the call failed.
    assert [c.tool for c in after] == ["store_credential", "alpaca_get_account", "alpaca_place_order"]
    assert isinstance(after[-1].error, PolicyRefusal)


async def test_live_trading_wall_comes_before_hooks_and_unsealing(
    server_settings: Settings, simulator: Any
) -> None:
    live = simulator.new_account(api_key="AK" + "7" * 18)
    hooks = GateHooks()
    reached: list[str] = []

    async def before(call: ToolCall) -> None:
        reached.append(call.tool)

    hooks.add_before_send(before)
    async with Client(build_server(server_settings, gate_hooks=hooks)) as client:
        stored = await client.call_tool(
            "store_credential",
            {"name": "live-1", "api_key": live.api_key, "secret_key": live.secret_key, "environment": "live"},
        )
        assert not stored.is_error, text_of(stored)
        refused = await client.call_tool("alpaca_cancel_all_orders", {})
    assert refused.is_error
    assert text_of(refused).removeprefix("Error executing tool alpaca_cancel_all_orders: ") == (
        "Credential 'live-1' is a live-trading credential and live trading is disabled, so alpaca-vault will "
        "not cancel orders. Use a paper credential, or ask the operator to set "
        "ALPACA_VAULT_ALLOW_LIVE_TRADING=true and restart the server."
    )
    assert reached == ["store_credential"]  # the wall refused before any hook ran


def test_every_row_declares_an_intent_that_matches_its_annotations() -> None:
    for spec in TOOLS:
        assert isinstance(spec.intent, Intent), spec.name
        annotations = spec.annotations()
        assert annotations.read_only_hint is (spec.intent is Intent.READ), spec.name
        if spec.intent.changes_alpaca_state:
            assert annotations.open_world_hint and annotations.destructive_hint, spec.name


async def test_a_protocol_error_passes_the_gate_untouched(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    """An MCPError (e.g. URL elicitation required, for the console's key entry) is the SDK's to answer."""
    hooks = GateHooks()

    async def ask_for_the_page(call: ToolCall) -> None:
        raise MCPError(-32042, "Open the key entry page first")

    hooks.add_before_send(ask_for_the_page, intents={Intent.CANCEL_ALL})
    async with Client(build_server(server_settings, gate_hooks=hooks)) as client:
        await store(client, sim_account)
        with pytest.raises(MCPError) as caught:
            await client.call_tool("alpaca_cancel_all_orders", {})
    assert caught.value.error.code == -32042
    assert caught.value.error.message == "Open the key entry page first"
