"""Every tool in one table: name, function, title, toolset, intent, and what it promises clients.

A row declares what the tool does (its :class:`~alpaca_vault.guard.Intent`, which the gate, the
trading guard and the audit trail key on), whether it can be repeated safely, whether it talks to
Alpaca, and the hints for argument names agents borrow from Alpaca's REST API. The MCP annotations
derive from the row (clients ask a human before a destructive call), the secret arguments from the
tool's input schema (``writeOnly``, what pydantic writes for ``SecretStr``). ``register_tools``
refuses a malformed row when the server starts, before any client can call it (a stdio server: before it
answers its first listing or call, unless the listing it stored proves that these very rows all built;
server/tool_listing.py).
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NoReturn

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.context_injection import find_context_parameter
from mcp_types import ToolAnnotations

from alpaca_vault.guard.intents import Intent
from alpaca_vault.tools import (
    account,
    audit,
    bars,
    credentials,
    guardrails,
    locates,
    market,
    news,
    options,
    trading,
    watchlists,
)
from alpaca_vault.tools.gate import guarded
from alpaca_vault.tools.schemas import compact_input_schema, compact_schema
from alpaca_vault.tools.table import MAX_TOOL_NAME_LENGTH, RegisteredTool, ToolTable

Toolset = Literal["credentials", "account", "trading", "market", "options", "news", "watchlists", "locates"]
Risk = Literal["read", "write", "destructive"]
TOOLSETS: frozenset[str] = frozenset(
    {"credentials", "account", "trading", "market", "options", "news", "watchlists", "locates"}
)

_NAME = re.compile(rf"[a-z][a-z0-9_]{{0,{MAX_TOOL_NAME_LENGTH - 1}}}")

# Names agents borrow from Alpaca's REST API (or guess), mapped to ours: the error says what to send.
CREDENTIAL_HINTS: Mapping[str, str] = MappingProxyType(
    {"account": "credential", "credential_name": "credential"}
)
ORDER_ID_HINTS: Mapping[str, str] = MappingProxyType({"id": "order_id", "client_id": "client_order_id"})
ORDER_HINTS: Mapping[str, str] = MappingProxyType(
    {
        "take_profit": "take_profit_limit_price",
        "stop_loss": "stop_loss_stop_price (and stop_loss_limit_price)",
        "tif": "time_in_force",
        "order_type": "type",
        "price": "limit_price",
        "quantity": "qty",
        "amount": "notional",
        "client_id": "client_order_id",
    }
)
REPLACE_HINTS: Mapping[str, str] = MappingProxyType(
    {
        "tif": "time_in_force",
        "price": "limit_price",
        "quantity": "qty",
        "trail_price": "trail",
        "id": "order_id",
    }
)


class MalformedToolSpec(ValueError):
    """A registry row contradicts itself or its function; the server refuses to start with it."""


@dataclass(frozen=True)
class ToolSpec:
    name: str
    fn: Callable[..., Awaitable[Any]]
    title: str
    toolset: Toolset
    intent: Intent
    risk: Risk
    idempotent: bool
    calls_alpaca: bool
    #: Unknown argument -> what to send instead (say it in the refusal).
    hints: Mapping[str, str] = field(default_factory=dict)

    def annotations(self) -> ToolAnnotations:
        return ToolAnnotations(
            title=self.title,
            read_only_hint=self.risk == "read",
            destructive_hint=self.risk == "destructive",
            idempotent_hint=self.idempotent,
            open_world_hint=self.calls_alpaca,
        )


# Names the single-symbol market data tools took before they took several (issue #15).
SYMBOLS_HINTS: Mapping[str, str] = MappingProxyType({**CREDENTIAL_HINTS, "symbol": "symbols"})
C, ORD, R, S = (
    CREDENTIAL_HINTS,
    ORDER_HINTS,
    ORDER_ID_HINTS,
    SYMBOLS_HINTS,
)  # short names keep the table one row per tool
# fmt: off
TOOLS: tuple[ToolSpec, ...] = (
    #        name                            function                               title                           toolset        intent                        risk           idempotent alpaca hints
    ToolSpec("store_credential",             credentials.store_credential,          "Store an Alpaca credential",    "credentials", Intent.CREDENTIAL_STORE,      "write",       False,     True,  {"key": "api_key", "secret": "secret_key"}),
    ToolSpec("list_credentials",             credentials.list_credentials,          "List stored credentials",       "credentials", Intent.READ,                  "read",        True,      False),
    ToolSpec("validate_credential",          credentials.validate_credential,       "Validate a credential",         "credentials", Intent.CREDENTIAL_VALIDATE,   "write",       True,      True,  C),
    ToolSpec("update_credential",            credentials.update_credential,         "Update a credential",           "credentials", Intent.CREDENTIAL_UPDATE,     "destructive", True,      True,  {**C, "name": "new_name"}),
    ToolSpec("delete_credential",            credentials.delete_credential,         "Delete a credential",           "credentials", Intent.CREDENTIAL_DELETE,     "destructive", True,      False, C),
    ToolSpec("get_trading_policy",           guardrails.get_trading_policy,         "Get a trading policy",          "credentials", Intent.READ,                  "read",        True,      False, C),
    ToolSpec("list_audit_events",            audit.list_audit_events,               "List audit events",             "credentials", Intent.READ,                  "read",        True,      False, C),
    ToolSpec("alpaca_get_account",           account.alpaca_get_account,            "Get account",                   "account",     Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_get_positions",         account.alpaca_get_positions,          "Get positions",                 "account",     Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_get_position",          account.alpaca_get_position,           "Get one position",              "account",     Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_get_portfolio_history", account.alpaca_get_portfolio_history,  "Get portfolio history",         "account",     Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_get_activities",        account.alpaca_get_activities,         "Get account activities",        "account",     Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_close_position",        trading.alpaca_close_position,         "Close a position",              "trading",     Intent.CLOSE,                 "destructive", False,     True,  {**C, "quantity": "qty", "percent": "percentage"}),
    ToolSpec("alpaca_list_orders",           trading.alpaca_list_orders,            "List orders",                   "trading",     Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_get_order",             trading.alpaca_get_order,              "Get an order",                  "trading",     Intent.READ,                  "read",        True,      True,  {**C, **R}),
    ToolSpec("alpaca_preview_order",         guardrails.alpaca_preview_order,       "Preview an order",              "trading",     Intent.READ,                  "read",        True,      True,  {**C, **ORD}),
    ToolSpec("alpaca_place_order",           trading.alpaca_place_order,            "Place an order",                "trading",     Intent.PLACE,                 "destructive", False,     True,  {**C, **ORD}),
    ToolSpec("alpaca_replace_order",         trading.alpaca_replace_order,          "Replace an order",              "trading",     Intent.REPLACE,               "destructive", False,     True,  {**C, **REPLACE_HINTS}),
    ToolSpec("alpaca_cancel_order",          trading.alpaca_cancel_order,           "Cancel an order",               "trading",     Intent.CANCEL,                "destructive", True,      True,  {**C, "id": "order_id"}),
    ToolSpec("alpaca_cancel_all_orders",     trading.alpaca_cancel_all_orders,      "Cancel all orders",             "trading",     Intent.CANCEL_ALL,            "destructive", True,      True,  C),
    ToolSpec("alpaca_get_clock",             market.alpaca_get_clock,               "Get market clock",              "market",      Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_get_calendar",          market.alpaca_get_calendar,            "Get market calendar",           "market",      Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_get_asset",             market.alpaca_get_asset,               "Get an asset",                  "market",      Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_get_latest_quote",      market.alpaca_get_latest_quote,        "Get latest quotes",             "market",      Intent.READ,                  "read",        True,      True,  S),
    ToolSpec("alpaca_get_latest_trade",      market.alpaca_get_latest_trade,        "Get latest trades",             "market",      Intent.READ,                  "read",        True,      True,  S),
    ToolSpec("alpaca_get_bars",              bars.alpaca_get_bars,                  "Get price bars",                "market",      Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_get_snapshot",          market.alpaca_get_snapshot,            "Get snapshots",                 "market",      Intent.READ,                  "read",        True,      True,  S),
    # issue #15
    ToolSpec("alpaca_get_account_config",    account.alpaca_get_account_config,     "Get account configuration",     "account",     Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_update_account_config", account.alpaca_update_account_config,  "Update account configuration",  "trading",     Intent.CONFIGURE_ACCOUNT,     "destructive", True,      True,  C),
    ToolSpec("alpaca_close_all_positions",   trading.alpaca_close_all_positions,    "Close all positions",           "trading",     Intent.CLOSE_ALL,             "destructive", False,     True,  C),
    ToolSpec("alpaca_list_assets",           market.alpaca_list_assets,             "List assets",                   "market",      Intent.READ,                  "read",        True,      True,  {**C, "class": "asset_class", "search": "name_contains"}),
    ToolSpec("alpaca_get_quotes",            market.alpaca_get_quotes,              "Get historical quotes",         "market",      Intent.READ,                  "read",        True,      True,  S),
    ToolSpec("alpaca_get_trades",            market.alpaca_get_trades,              "Get historical trades",         "market",      Intent.READ,                  "read",        True,      True,  S),
    ToolSpec("alpaca_get_orderbook",         market.alpaca_get_orderbook,           "Get crypto order books",        "market",      Intent.READ,                  "read",        True,      True,  S),
    ToolSpec("alpaca_get_market_movers",     market.alpaca_get_market_movers,       "Get top market movers",         "market",      Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_get_most_actives",      market.alpaca_get_most_actives,        "Get most active stocks",        "market",      Intent.READ,                  "read",        True,      True,  C),
    ToolSpec("alpaca_get_option_contracts",  options.alpaca_get_option_contracts,   "Search option contracts",       "options",     Intent.READ,                  "read",        True,      True,  {**C, "underlying_symbol": "underlying", "symbol": "underlying"}),
    ToolSpec("alpaca_get_option_chain",      options.alpaca_get_option_chain,       "Get an option chain",           "options",     Intent.READ,                  "read",        True,      True,  {**C, "underlying_symbol": "underlying", "symbol": "underlying"}),
    ToolSpec("alpaca_exercise_option",       options.alpaca_exercise_option,        "Exercise an option",            "trading",     Intent.EXERCISE,              "destructive", False,     True,  {**C, "symbol_or_contract_id": "symbol"}),
    ToolSpec("alpaca_get_news",              news.alpaca_get_news,                  "Get news",                      "news",        Intent.READ,                  "read",        True,      True,  {**C, "symbol": "symbols"}),
    ToolSpec("alpaca_get_corporate_actions", news.alpaca_get_corporate_actions,     "Get corporate actions",         "news",        Intent.READ,                  "read",        True,      True,  {**C, "symbol": "symbols", "ca_types": "types"}),
    ToolSpec("alpaca_get_watchlists",        watchlists.alpaca_get_watchlists,      "Get watchlists",                "watchlists",  Intent.READ,                  "read",        True,      True,  {**C, "id": "watchlist_id"}),
    ToolSpec("alpaca_save_watchlist",        watchlists.alpaca_save_watchlist,      "Create or change a watchlist",  "watchlists",  Intent.CHANGE_WATCHLIST,      "destructive", False,     True,  {**C, "id": "watchlist_id", "symbol": "add"}),
    ToolSpec("alpaca_delete_watchlist",      watchlists.alpaca_delete_watchlist,    "Delete a watchlist",            "watchlists",  Intent.CHANGE_WATCHLIST,      "destructive", True,      True,  {**C, "id": "watchlist_id"}),
    ToolSpec("alpaca_get_locates",           locates.alpaca_get_locates,            "Get short-sale locates",        "locates",     Intent.READ,                  "read",        True,      True,  {**C, "symbol": "symbols", "id": "locate_id"}),
    ToolSpec("alpaca_request_locate",        locates.alpaca_request_locate,         "Request a short-sale locate",   "locates",     Intent.LOCATE,                "destructive", False,     True,  {**C, "quantity": "qty", "max_fee": "limit_price"}),
)
# fmt: on
del C, ORD, R, S


def secret_arguments(input_schema: Mapping[str, Any]) -> frozenset[str]:
    """The arguments whose schema (or a branch of it) is ``writeOnly``: pydantic's mark for ``SecretStr``."""
    return frozenset(
        name
        for name, schema in input_schema.get("properties", {}).items()
        if _write_only(schema, input_schema)
    )


def _write_only(schema: Any, root: Mapping[str, Any]) -> bool:
    if isinstance(schema, list):
        return any(_write_only(item, root) for item in schema)
    if not isinstance(schema, dict):
        return False
    if schema.get("writeOnly") is True:
        return True
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _write_only(root.get("$defs", {}).get(ref.removeprefix("#/$defs/")), root)
    return any(_write_only(schema.get(key), root) for key in ("anyOf", "oneOf", "allOf"))


def check_spec(spec: ToolSpec) -> str:
    """Refuse a row that contradicts itself or its function (MalformedToolSpec says which and why).

    Returns the name of the function's Context parameter (resolving type hints is most of a check).
    """

    def refuse(problem: str) -> NoReturn:
        raise MalformedToolSpec(f"Tool row {spec.name!r}: {problem}")

    if not _NAME.fullmatch(spec.name):
        refuse("a tool name is 1-64 lower-case letters, digits and underscores, starting with a letter")
    if not isinstance(spec.intent, Intent):
        refuse(f"intent must be an Intent, not {spec.intent!r}")
    if spec.toolset not in TOOLSETS:
        refuse(f"unknown toolset {spec.toolset!r}")
    if spec.risk not in ("read", "write", "destructive"):
        refuse(f"unknown risk {spec.risk!r}")
    if (spec.intent is Intent.READ) != (spec.risk == "read"):
        refuse(f"intent {spec.intent} and risk {spec.risk!r} disagree (only a read is risk 'read')")
    if spec.intent.changes_alpaca_state and not spec.calls_alpaca:
        refuse(f"intent {spec.intent} changes state at Alpaca, so calls_alpaca must be True")
    if not inspect.iscoroutinefunction(spec.fn):
        refuse("the function must be async")
    if not inspect.cleandoc(spec.fn.__doc__ or ""):
        refuse("the function needs a docstring: it is the tool's description")
    context_parameter = find_context_parameter(spec.fn)
    if context_parameter is None:
        refuse("the function must take a Context parameter (the gate finds the caller through it)")
    parameters = inspect.signature(spec.fn).parameters
    for wrong, right in spec.hints.items():
        if wrong in parameters:
            refuse(f"hint {wrong!r} is a real argument of the tool")
        target = right.split(" ", 1)[0]
        if target not in parameters:
            refuse(f"hint {wrong!r} -> {right!r} names no argument of the tool")
    return context_parameter


@dataclass(frozen=True)
class _BuiltTool:
    """One row's SDK tool with its published schemas, built once per process (see ``_built``)."""

    spec: ToolSpec
    tool: Tool
    secret_arguments: frozenset[str]


# Building a tool (pydantic models from its signature, their JSON schemas, then our compaction) costs
# about 12 ms a row, over half a second for the table; a process that builds several servers (tests, a
# stdio server that registers a tool for its first call and every tool later) pays it once. Keyed by the
# row's identity: a row is immutable and its function is a module-level one.
_BUILT: dict[int, _BuiltTool] = {}


def _built(spec: ToolSpec) -> _BuiltTool:
    cached = _BUILT.get(id(spec))
    if cached is not None and cached.spec is spec:
        return cached
    context_parameter = check_spec(spec)
    secret: set[str] = set()  # filled below, from the input schema the SDK builds
    fn = guarded(
        spec.fn,
        tool=spec.name,
        intent=spec.intent,
        context_parameter=context_parameter,
        secret_arguments=secret,
    )
    tool = Tool.from_function(
        fn,
        name=spec.name,
        title=spec.title,
        # The parameter the check found (the wrapper shows the function's signature): the SDK would
        # resolve every type hint of the function a third time to find it (~1.5 ms a row).
        context_kwarg=context_parameter,
        # Dedented: the SDK would send a docstring's source indentation to the model as is.
        description=inspect.cleandoc(spec.fn.__doc__ or ""),
        annotations=spec.annotations(),
    )
    tool.parameters["additionalProperties"] = False  # say to clients what argument_guard enforces
    secret.update(secret_arguments(tool.parameters))
    tool.parameters = compact_input_schema(tool.parameters)  # what the model reads, at its cheapest
    # Every result is validated by the client against its output schema: publish the cheap form.
    if tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = compact_schema(tool.fn_metadata.output_schema)
    built = _BUILT[id(spec)] = _BuiltTool(spec, tool, frozenset(secret))
    return built


def register_tools(
    server: MCPServer[Any],
    toolsets: frozenset[str] | None = None,
    *,
    rows: Sequence[ToolSpec] | None = None,
    names: Collection[str] | None = None,
) -> ToolTable:
    """Register every row (or those in ``toolsets``) on ``server``, each behind the gate.

    Every row is checked first, enabled or not: a malformed one stops the server from starting.
    ``names``: register only the enabled rows of these names, checking only those rows (none at all for
    a name no enabled row has). A stdio server does so for a tool's first call once its stored listing
    proves that every row of these very sources built (server/tool_listing.py).
    Returns what the middleware stack needs to know of each tool: its input properties and secret arguments.
    """
    rows = TOOLS if rows is None else rows
    registered: dict[str, RegisteredTool] = {}
    all_names = [spec.name for spec in rows]
    if len(set(all_names)) != len(all_names):
        duplicated = sorted({n for n in all_names if all_names.count(n) > 1})
        raise MalformedToolSpec(f"Tool names must be unique; repeated: {', '.join(duplicated)}")
    wanted = [
        spec
        for spec in rows
        if (names is None or spec.name in names) and (toolsets is None or spec.toolset in toolsets)
    ]
    checked = rows if names is None else wanted
    built = {id(entry.spec): entry for entry in map(_built, checked)}  # a malformed row raises here
    manager = server._tool_manager  # the SDK's add_tool rebuilds the schemas; it has no add of a built Tool
    for spec in wanted:
        if manager.get_tool(spec.name) is not None:
            raise MalformedToolSpec(f"Tool {spec.name!r} is already registered on this server")
    for spec in wanted:
        entry = built[id(spec)]
        # A server of its own may edit its copy of the input schema (app._hide_key_arguments does).
        tool = entry.tool.model_copy(update={"parameters": copy.deepcopy(entry.tool.parameters)})
        manager._tools[spec.name] = tool
        registered[spec.name] = RegisteredTool(
            spec=spec,
            properties=tool.parameters.get("properties", {}),
            secret_arguments=entry.secret_arguments,
        )
    return ToolTable(registered)


def build_in_steps(rows: Sequence[ToolSpec] = TOOLS) -> Iterator[None]:
    """Build (and check) every row ahead of ``register_tools``, yielding after each (about 15 ms a row)."""
    for spec in rows:
        _built(spec)
        yield
