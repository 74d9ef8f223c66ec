"""Broker errors carry facts; no text under broker/ names an MCP tool (the advice lives in tools/)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import alpaca_vault.broker
from alpaca_vault.broker import (
    AlpacaAuthError,
    AlpacaConnectionError,
    AlpacaError,
    AlpacaRateLimited,
    AlpacaRejected,
    AlpacaRequestError,
    AlpacaTimeout,
    ClientOrderIdConflict,
    LiveTradingDisabled,
    OrderOutcomeUnknown,
)
from alpaca_vault.tools.registry import TOOLS

BROKER = Path(alpaca_vault.broker.__file__).parent
# The tools of DESIGN.md, registered or still to come: none may be named below tools/.
DESIGNED = {
    "store_credential",
    "list_credentials",
    "validate_credential",
    "update_credential",
    "delete_credential",
    "get_trading_policy",
    "list_audit_events",
}
TOOL_NAMES = {spec.name for spec in TOOLS} | DESIGNED


def _strings(path: Path) -> list[tuple[int, str]]:
    """Every string literal of a module (f-string parts too), with its line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_the_scan_sees_the_broker_and_the_tools() -> None:
    modules = sorted(BROKER.rglob("*.py"))
    assert len(modules) > 15, modules
    assert "alpaca_get_order" in TOOL_NAMES and "alpaca_list_orders" in TOOL_NAMES
    # The check would catch the texts broker errors used to carry.
    assert _names_a_tool("look it up with alpaca_get_order(client_order_id='x')") == ["alpaca_get_order"]
    assert _names_a_tool("check list_orders and the positions") == ["list_orders"]
    assert _names_a_tool("store fresh keys with update_credential") == ["update_credential"]


def _names_a_tool(text: str) -> list[str]:
    words = set(re.findall(r"\b[a-z][a-z_]+\b", text))
    named = sorted(words & TOOL_NAMES)
    # A tool's name without the alpaca_ prefix reads as a tool to an agent too ("list_orders").
    named += sorted(w for w in words if f"alpaca_{w}" in TOOL_NAMES)
    return named


@pytest.mark.parametrize("path", sorted(BROKER.rglob("*.py")), ids=lambda p: str(p.relative_to(BROKER)))
def test_no_string_in_broker_names_an_mcp_tool(path: Path) -> None:
    offenders = [
        (line, text[:80], _names_a_tool(text)) for line, text in _strings(path) if _names_a_tool(text)
    ]
    assert offenders == []


ERRORS: list[AlpacaError] = [
    AlpacaAuthError(401, 40110000, "request is not authorized"),
    AlpacaRateLimited(429, None, "rate limit exceeded", retry_after=3),
    AlpacaTimeout("Alpaca did not answer within 10s", request_sent=True),
    AlpacaConnectionError("Could not connect to Alpaca", request_sent=False),
    AlpacaRequestError(
        "The configured Alpaca URL is not a valid URL, so nothing was sent", request_sent=False
    ),
    OrderOutcomeUnknown("The order request was sent but its outcome is unknown", client_order_id="mine-1"),
    OrderOutcomeUnknown(
        "The request (closing AAPL) was sent but its outcome is unknown", client_order_id=None
    ),
    ClientOrderIdConflict(
        "mine-1", existing_order_id="o-1", differences=["qty"], existing="buy 1 AAPL market", untouched="x"
    ),
    LiveTradingDisabled("place an order"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_error_texts_name_no_tool_and_give_no_advice(error: AlpacaError) -> None:
    text = str(error)
    assert not _names_a_tool(text), text
    assert not hasattr(type(error), "hint"), "advice belongs in the tools' table, keyed by class"
    assert error.as_dict()["message"] == error.message


def test_client_order_id_conflict_is_a_rejection_with_its_facts() -> None:
    error = ClientOrderIdConflict(
        "mine-1",
        existing_order_id="61e69015-8549-4bfd-b9c3-01e75843f47d",
        differences=["qty", "limit_price"],
        existing="buy 2 AAPL limit limit_price=1 time_in_force=day status=new",
        untouched="nothing new was placed",
    )
    assert isinstance(error, AlpacaRejected) and error.status == 422
    assert (error.client_order_id, error.existing_order_id, error.differences) == (
        "mine-1",
        "61e69015-8549-4bfd-b9c3-01e75843f47d",
        ["qty", "limit_price"],
    )
    assert str(error) == (
        "client_order_id 'mine-1' already belongs to a different order (order "
        "61e69015-8549-4bfd-b9c3-01e75843f47d: buy 2 AAPL limit limit_price=1 time_in_force=day status=new; "
        "differs in qty, limit_price); nothing new was placed (HTTP 422)."
    )
