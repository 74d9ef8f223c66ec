"""Every tool in one table: name, function, title, toolset and what it may do to the world.

The annotations are promises to clients (which ask a human before a
destructive call), so each row says plainly whether the tool reads, writes,
destroys, can be repeated safely, and talks to Alpaca.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from alpaca_vault.tools import account, credentials, market, trading
from alpaca_vault.tools.schemas import compact_output_schemas

Toolset = Literal["credentials", "account", "trading", "market"]
Risk = Literal["read", "write", "destructive"]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    fn: Callable[..., Any]
    title: str
    toolset: Toolset
    risk: Risk
    idempotent: bool
    calls_alpaca: bool

    def annotations(self) -> ToolAnnotations:
        return ToolAnnotations(
            title=self.title,
            read_only_hint=self.risk == "read",
            destructive_hint=self.risk == "destructive",
            idempotent_hint=self.idempotent,
            open_world_hint=self.calls_alpaca,
        )


# fmt: off
TOOLS: tuple[ToolSpec, ...] = (
    #        name                            function                               title                           toolset        risk           idempotent  alpaca
    ToolSpec("store_credential",             credentials.store_credential,          "Store an Alpaca credential",    "credentials", "write",       False,      True),
    ToolSpec("list_credentials",             credentials.list_credentials,          "List stored credentials",       "credentials", "read",        True,       False),
    ToolSpec("validate_credential",          credentials.validate_credential,       "Validate a credential",         "credentials", "write",       True,       True),
    ToolSpec("update_credential",            credentials.update_credential,         "Update a credential",           "credentials", "destructive", True,       True),
    ToolSpec("delete_credential",            credentials.delete_credential,         "Delete a credential",           "credentials", "destructive", True,       False),
    ToolSpec("alpaca_get_account",           account.alpaca_get_account,            "Get account",                   "account",     "read",        True,       True),
    ToolSpec("alpaca_get_positions",         account.alpaca_get_positions,          "Get positions",                 "account",     "read",        True,       True),
    ToolSpec("alpaca_get_position",          account.alpaca_get_position,           "Get one position",              "account",     "read",        True,       True),
    ToolSpec("alpaca_get_portfolio_history", account.alpaca_get_portfolio_history,  "Get portfolio history",         "account",     "read",        True,       True),
    ToolSpec("alpaca_get_activities",        account.alpaca_get_activities,         "Get account activities",        "account",     "read",        True,       True),
    ToolSpec("alpaca_close_position",        trading.alpaca_close_position,         "Close a position",              "trading",     "destructive", False,      True),
    ToolSpec("alpaca_list_orders",           trading.alpaca_list_orders,            "List orders",                   "trading",     "read",        True,       True),
    ToolSpec("alpaca_get_order",             trading.alpaca_get_order,              "Get an order",                  "trading",     "read",        True,       True),
    ToolSpec("alpaca_place_order",           trading.alpaca_place_order,            "Place an order",                "trading",     "destructive", False,      True),
    ToolSpec("alpaca_replace_order",         trading.alpaca_replace_order,          "Replace an order",              "trading",     "destructive", False,      True),
    ToolSpec("alpaca_cancel_order",          trading.alpaca_cancel_order,           "Cancel an order",               "trading",     "destructive", True,       True),
    ToolSpec("alpaca_cancel_all_orders",     trading.alpaca_cancel_all_orders,      "Cancel all orders",             "trading",     "destructive", True,       True),
    ToolSpec("alpaca_get_clock",             market.alpaca_get_clock,               "Get market clock",              "market",      "read",        True,       True),
    ToolSpec("alpaca_get_calendar",          market.alpaca_get_calendar,            "Get market calendar",           "market",      "read",        True,       True),
    ToolSpec("alpaca_get_asset",             market.alpaca_get_asset,               "Get an asset",                  "market",      "read",        True,       True),
    ToolSpec("alpaca_get_latest_quote",      market.alpaca_get_latest_quote,        "Get latest quote",              "market",      "read",        True,       True),
    ToolSpec("alpaca_get_latest_trade",      market.alpaca_get_latest_trade,        "Get latest trade",              "market",      "read",        True,       True),
    ToolSpec("alpaca_get_bars",              market.alpaca_get_bars,                "Get price bars",                "market",      "read",        True,       True),
    ToolSpec("alpaca_get_snapshot",          market.alpaca_get_snapshot,            "Get a snapshot",                "market",      "read",        True,       True),
)
# fmt: on


def register_tools(server: MCPServer[Any], toolsets: frozenset[str] | None = None) -> None:
    """Register every tool (or only those in ``toolsets``) on ``server``."""
    for spec in TOOLS:
        if toolsets is None or spec.toolset in toolsets:
            server.add_tool(
                spec.fn,
                name=spec.name,
                title=spec.title,
                # Dedented: the SDK would send a docstring's source indentation to the model as is.
                description=inspect.cleandoc(spec.fn.__doc__ or ""),
                annotations=spec.annotations(),
            )
    # Every result is validated by the client against its output schema: publish the cheap form.
    compact_output_schemas(server)
