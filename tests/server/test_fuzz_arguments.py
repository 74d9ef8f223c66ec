"""Property-based: arbitrary argument sets never crash a tool or the server.

Every answer must be a result or a tool error whose text explains itself;
never a protocol error, never the SDK's bare "Error executing tool X" that
marks an unexpected exception, nor our own internal-error text, and the
server keeps serving afterwards. The tool list comes from the registry and
the arguments from each tool's input schema, so a new tool is fuzzed at once.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult

from alpaca_vault.guard import Intent
from alpaca_vault.server.settings import Settings
from alpaca_vault.tools.registry import TOOLS, ToolTable, register_tools
from tests.fixtures.mcp_server import ThreadedClient, text_of


@pytest.fixture
def threaded_client(server_settings: Settings, sim_account: Any) -> Iterator[ThreadedClient]:
    client = ThreadedClient(server_settings)
    stored = client.call(
        "store_credential",
        {"name": "fuzz", "api_key": sim_account.api_key, "secret_key": sim_account.secret_key},
    )
    assert not stored.is_error, text_of(stored)
    yield client
    assert not client.call("list_credentials", {}).is_error  # still serving
    client.close()


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


def mostly(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Plausible values three times in four, arbitrary JSON otherwise: deep enough to reach our own checks."""
    return st.one_of(plausible, plausible, plausible, json_value)


price = mostly(
    st.one_of(
        st.decimals(min_value=Decimal("-5"), max_value=Decimal("1000"), places=2, allow_nan=False).map(str),
        st.integers(min_value=-5, max_value=5000),
    )
)
OPTION = "AAPL261218C00190000"
leg = st.fixed_dictionaries(
    {"symbol": mostly(st.sampled_from([OPTION, "AAPL261218P00190000", "AAPL", "SPY261218C00500000"]))},
    optional={
        "side": mostly(st.sampled_from(["buy", "sell"])),
        "ratio_qty": mostly(st.integers(min_value=-1, max_value=120)),
        "position_intent": mostly(st.sampled_from(["buy_to_open", "sell_to_open", "buy_to_close"])),
    },
)
order_arguments = st.fixed_dictionaries(
    {
        "symbol": mostly(
            st.sampled_from(
                [
                    "AAPL",
                    "aapl",
                    "BTC/USD",
                    "",
                    "../v2/account",
                    "NOSUCH",
                    "SPY",
                    OPTION,
                    "AAPL991231C00000000",
                ]
            )
        ),
        "side": mostly(st.sampled_from(["buy", "sell", "buy", "sell", "hold"])),
    },
    optional={
        # issue #15: option contracts, position intents and multi-leg orders.
        "position_intent": mostly(st.sampled_from(["buy_to_open", "sell_to_close", "sell_to_open", "hold"])),
        "legs": mostly(st.lists(leg, max_size=5)),
        "qty": price,
        "notional": price,
        "type": mostly(
            st.sampled_from(["market", "limit", "stop", "stop_limit", "trailing_stop", "iceberg"])
        ),
        "time_in_force": mostly(st.sampled_from(["day", "gtc", "ioc", "fok", "opg", "cls", "forever"])),
        "limit_price": price,
        "stop_price": price,
        "trail_price": price,
        "trail_percent": price,
        "extended_hours": mostly(st.booleans()),
        "order_class": mostly(st.sampled_from(["simple", "bracket", "oco", "oto", "mleg", "mleg", "weird"])),
        "take_profit_limit_price": price,
        "stop_loss_stop_price": price,
        "stop_loss_limit_price": price,
        "client_order_id": mostly(st.text(max_size=140)),
        "credential": mostly(st.sampled_from(["fuzz", "other", ""])),
    },
)
# Values that reach our own checks, by argument name; anything else comes from the schema alone.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "symbol": st.sampled_from(["AAPL", "aapl", "BTC/USD", "", "../v2/account", "NOSUCH", "SPY"]),
    "symbols": st.lists(st.sampled_from(["AAPL", "BTC/USD", "", "x y"]), max_size=3),
    "credential": st.sampled_from(["fuzz", "other", "", "00000000-0000-0000-0000-000000000000"]),
    "order_id": st.sampled_from(["", "../account", "00000000-0000-0000-0000-000000000000", "not-an-id"]),
    "client_order_id": st.text(max_size=140),
    "api_key": st.text(max_size=30),
    "secret_key": st.text(max_size=50),
    "name": st.text(max_size=70),
    "new_name": st.text(max_size=70),
}


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a JSON schema allows (roughly), plus some it does not: the server must explain both."""
    if "enum" in schema:
        return st.sampled_from([*schema["enum"], "weird"])
    if "anyOf" in schema:
        return st.one_of([from_schema(branch) for branch in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.sampled_from(["2024-01-02T15:04:05Z", "2031-12-31T00:00:00+05:00", "yesterday"])
        if schema.get("format") == "date":
            return st.sampled_from(["2024-01-02", "2030-02-30", "today"])
        return st.text(max_size=schema.get("maxLength", 40) + 2)
    if kind == "integer":
        return st.integers(min_value=-5, max_value=schema.get("maximum", 1000) + 5)
    if kind == "number":
        return st.one_of(st.integers(-5, 5000), st.decimals("-5", "1000", places=2, allow_nan=False).map(str))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=3)
    if kind == "null":
        return st.none()
    return json_value


TABLE: ToolTable = register_tools(MCPServer(name="fuzz"))  # each tool's input schema, as clients see it


def arguments_for(name: str) -> st.SearchStrategy[dict[str, Any]]:
    properties = TABLE[name].properties
    return st.fixed_dictionaries(
        {},
        optional={
            argument: mostly(PLAUSIBLE.get(argument, from_schema(schema)))
            for argument, schema in properties.items()
        },
    )


# Each tool's call strategy is built once here, not inside the flatmap: a flatmap that builds a strategy
# rebuilds (and Hypothesis re-validates) it on every draw, which cost more than half of this strategy's
# generation time. The values are the same: the flatmap picks the strategy arguments_for(name) builds.
TOOL_CALLS = {name: st.tuples(st.just(name), arguments_for(name)) for name in sorted(TABLE)}
any_tool_call = st.sampled_from(sorted(TOOL_CALLS)).flatmap(TOOL_CALLS.__getitem__)
_CREDENTIAL_CHANGES = {Intent.CREDENTIAL_UPDATE, Intent.CREDENTIAL_DELETE}

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_explained(name: str, result: CallToolResult) -> None:
    assert isinstance(result, CallToolResult)
    if result.is_error:
        text = text_of(result)
        assert text.strip(), name
        assert text.strip() != f"Error executing tool {name}", f"unexpected exception in {name}"
        assert "internal error" not in text, f"a bug in {name}: {text}"
        assert "Traceback" not in text


@pytest.mark.timeout(600)
@FUZZ
@given(arguments=order_arguments)
def test_place_order_never_crashes(threaded_client: ThreadedClient, arguments: dict[str, Any]) -> None:
    assert_explained("alpaca_place_order", threaded_client.call("alpaca_place_order", arguments))


def test_the_fuzz_covers_every_registered_tool() -> None:
    assert set(TABLE) == {spec.name for spec in TOOLS}


@pytest.mark.timeout(600)
@FUZZ
@given(call=any_tool_call)
def test_no_tool_crashes(threaded_client: ThreadedClient, call: tuple[str, dict[str, Any]]) -> None:
    name, arguments = call
    intent = TABLE[name].spec.intent
    if intent is Intent.CREDENTIAL_STORE and isinstance(arguments.get("validate"), bool):
        arguments = {**arguments, "validate": False}  # random keys need not reach Alpaca
    if intent in _CREDENTIAL_CHANGES and (
        arguments.get("credential") == "fuzz" or arguments.get("name") == "fuzz"
    ):
        return  # keep the credential the other examples rely on
    assert_explained(name, threaded_client.call(name, arguments))


# issue #15: the new tools, each with arguments drawn from a shared pool of names and values.
NEW_TOOLS = [
    "alpaca_get_latest_quote", "alpaca_get_snapshot", "alpaca_list_assets", "alpaca_get_quotes",
    "alpaca_get_trades", "alpaca_get_orderbook", "alpaca_get_option_contracts", "alpaca_get_option_chain",
    "alpaca_get_news", "alpaca_get_corporate_actions", "alpaca_get_market_movers", "alpaca_get_most_actives",
    "alpaca_get_watchlists", "alpaca_save_watchlist", "alpaca_delete_watchlist", "alpaca_exercise_option",
    "alpaca_update_account_config", "alpaca_get_locates", "alpaca_request_locate",
]  # fmt: skip
ISIN = "US912797SX61"
symbolish = st.sampled_from(
    [
        "AAPL",
        "BTC/USD",
        OPTION,
        "AAPL,BTC/USD",
        "",
        "A" * 40,
        "../x",
        ",,",
        "GME",
        ISIN,
        f"{ISIN},AAPL",
        "US0000000000",
    ]
)
new_tool_calls = st.tuples(
    st.sampled_from(NEW_TOOLS),
    st.fixed_dictionaries(
        {},
        optional={
            "symbols": mostly(symbolish | st.lists(symbolish, max_size=3)),
            "symbol": mostly(symbolish),
            "underlying": mostly(symbolish),
            "start": mostly(st.sampled_from(["2026-11-30T15:00:00Z", "2026-11-30", "yesterday"])),
            "end": mostly(st.sampled_from(["2026-11-01T00:00:00Z", "2026-12-01"])),
            "limit": mostly(st.integers(min_value=-1, max_value=20_000)),
            "page_token": mostly(st.text(max_size=20)),
            "feed": mostly(st.sampled_from(["iex", "sip", "opra"])),
            "type": mostly(st.sampled_from(["call", "put", "forward_split"])),
            "types": mostly(st.lists(st.sampled_from(["cash_dividend", "bonus"]), max_size=3)),
            "strike_price_gte": price,
            "strike_price_lte": price,
            "watchlist_id": mostly(
                st.sampled_from(["00000000-0000-0000-0000-000000000000", "x", "../../v2"])
            ),
            "name": mostly(st.text(max_size=70)),
            "add": mostly(st.lists(symbolish, max_size=3)),
            "action": mostly(st.sampled_from(["exercise", "do_not_exercise", "sell"])),
            "max_margin_multiplier": mostly(st.sampled_from(["1", "2", "3"])),
            "depth": mostly(st.integers(min_value=-1, max_value=200)),
            # locates
            "kind": mostly(st.sampled_from(["locates", "quotes", "orders"])),
            "qty": mostly(st.sampled_from([100, 150, 0, -100, 10_000_100, "200", 1.5])),
            "limit_price": price,
            "all_or_none": mostly(st.booleans()),
            "locate_id": mostly(st.sampled_from(["00000000-0000-0000-0000-000000000000", "x", "../v2"])),
            "status": mostly(st.sampled_from(["active", "expired", "rejected", "open"])),
        },
    ),
)


# The order shapes of issue #15, each near-valid with one part drawn wild: a single option contract (whole
# contracts, day, position_intent), a 2-4 leg spread, a crypto pair (gtc/ioc, fractional qty or notional).
def _near(
    shape: dict[str, Any], wild: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """The shape's arguments (a wild value for some, kept half the time), plus optional wild extras.

    A shape's value may be a strategy (a spread's legs): drawn as it stands, never replaced by a wild one."""
    fixed = {k: _kept_or_wild(v, wild.get(k)) for k, v in shape.items()}
    return st.fixed_dictionaries(fixed, optional={k: v for k, v in wild.items() if k not in shape})


def _kept_or_wild(value: Any, wild: st.SearchStrategy[Any] | None) -> st.SearchStrategy[Any]:
    if isinstance(value, st.SearchStrategy):
        return value
    return st.just(value) if wild is None else st.one_of(st.just(value), wild)


CONTRACTS = ["AAPL261218C00190000", "AAPL261218C00195000", "AAPL261218P00185000", "SPY261218C00500000"]
shaped_orders = st.one_of(
    _near(
        {"symbol": OPTION, "side": "buy", "qty": 1},
        {"qty": price, "position_intent": mostly(st.sampled_from(["buy_to_open", "sell_to_close", "buy_to_close"])),
         "type": mostly(st.sampled_from(["market", "limit", "stop"])), "limit_price": price,
         "time_in_force": mostly(st.sampled_from(["day", "gtc"])), "notional": price},
    ),
    # The legs are a strategy inside the shape, not a flatmap over drawn legs that built a new _near
    # strategy for every example; the legs were never wild, so the values are the same.
    _near(
        {"order_class": "mleg", "qty": 1, "legs": st.lists(
            st.fixed_dictionaries(
                {"symbol": st.sampled_from(CONTRACTS), "side": st.sampled_from(["buy", "sell"])},
                optional={"ratio_qty": mostly(st.integers(min_value=0, max_value=5)),
                          "position_intent": mostly(st.sampled_from(["buy_to_open", "sell_to_open", "sell_to_close"]))},
            ),
            min_size=1, max_size=5,
        )},
        {"qty": price, "type": mostly(st.sampled_from(["market", "limit"])), "limit_price": price,
         "time_in_force": mostly(st.sampled_from(["day", "gtc"])), "symbol": mostly(st.just("AAPL"))},
    ),
    _near(
        {"symbol": "BTC/USD", "side": "buy", "notional": 25},
        {"qty": mostly(st.sampled_from(["0.0001", "0.000000001", "0.0000000001", "3"])), "notional": price,
         "type": mostly(st.sampled_from(["market", "limit", "stop_limit", "trailing_stop"])),
         "time_in_force": mostly(st.sampled_from(["gtc", "ioc", "day", "fok"])), "limit_price": price,
         "stop_price": price, "side": mostly(st.sampled_from(["buy", "sell"]))},
    ),
)  # fmt: skip


@pytest.mark.timeout(600)
@FUZZ
@given(arguments=shaped_orders)
def test_option_spread_and_crypto_orders_never_crash(
    threaded_client: ThreadedClient, arguments: dict[str, Any]
) -> None:
    result = threaded_client.call("alpaca_place_order", arguments)
    assert_explained("alpaca_place_order", result)
    if not result.is_error:  # what was accepted is the shape that was asked for
        order = (result.structured_content or {})["order"]
        expected = "crypto" if arguments.get("symbol") == "BTC/USD" else "us_option"
        assert order["asset_class"] == expected or order.get("order_class") == "mleg", order


@pytest.mark.timeout(600)
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call=new_tool_calls)
def test_new_tools_never_crash(threaded_client: ThreadedClient, call: tuple[str, dict[str, Any]]) -> None:
    name, arguments = call
    assert_explained(name, threaded_client.call(name, arguments))


# issue #10, point 1: hostile sizes in every tool's numeric, string and list arguments. Each example
# gives one argument of one tool a value built to cost memory or time (a 13-byte "1e80000000" that
# expands to 80 MB of digits, strings and lists far past their bounds); the answer must still be a
# result or a tool error, and the process's peak memory must not climb with them.
BOMB_NUMBERS = st.sampled_from(
    ["1e80000000", "-1e80000000", "1e-80000000", "9" * 41, "9" * 100_000, "NaN", "Infinity", "-0",
     10**400, -(10**400), 2**64, 1e308, -1e308, 0, -1]
)  # fmt: skip


def bomb_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value past the bounds a schema declares (or far past any sane one where it declares none)."""
    branches = schema.get("anyOf", [schema])
    kinds: set[str] = set()
    longest, most = 64, 100
    for branch in branches:
        kind = branch.get("type")
        kinds |= set(kind) if isinstance(kind, list) else {kind}
        longest = max(longest, branch.get("maxLength", 0))
        most = max(most, branch.get("maxItems", 0))
    options: list[st.SearchStrategy[Any]] = []
    if kinds & {"number", "integer"}:
        options.append(BOMB_NUMBERS)
    if "string" in kinds:
        options.append(
            st.sampled_from(["x" * (longest + 1), "A" * 200_000, "é" * 50_000, "1e80000000", "\x00"])
        )
    if "array" in kinds:
        options.append(st.sampled_from([["AAPL"] * (most + 1), ["A" * 10_000] * 3, ["AAPL"] * 20_000]))
    return st.one_of(options) if options else st.just("x" * 200_000)


def _bounds_missing(schema: dict[str, Any], where: str) -> list[str]:
    """Where a schema lets a string or a list be as long as a caller likes."""
    missing: list[str] = []
    for branch in schema.get("anyOf", [schema]):
        kind = branch.get("type")
        kinds = set(kind) if isinstance(kind, list) else {kind}
        if "string" in kinds and not {"maxLength", "enum", "format", "pattern"} & set(branch):
            missing.append(where)
        if "array" in kinds:
            if "maxItems" not in branch:
                missing.append(f"{where} (items)")
            missing += _bounds_missing(branch.get("items", {}), f"{where}[]")
    return missing


def test_every_string_and_list_argument_declares_its_bound() -> None:
    """Attack stopped: arguments without a length bound (credential, order ids, symbol lists, decimals as
    text) took whatever a caller sent. Every tool's schema now shows maxLength / maxItems for each."""
    unbounded = [
        f"{name}.{where}"
        for name, row in sorted(TABLE.items())
        for argument, schema in row.properties.items()
        for where in _bounds_missing(schema, argument)
    ]
    assert unbounded == []


def _sized(name: str) -> list[str]:
    """The arguments of a tool that take numbers, strings or lists."""
    return [
        argument
        for argument, schema in TABLE[name].properties.items()
        if bomb_for(schema) is not None and "enum" not in schema
    ]


# Built once per (tool, argument), not inside nested flatmaps that rebuilt them on every draw: the same
# choice (a tool, then one of its sized arguments, then a hostile value for it) and the same values.
_BOMB_CALLS = {
    (name, argument): st.tuples(st.just(name), st.just(argument), bomb_for(TABLE[name].properties[argument]))
    for name in sorted(TABLE)
    for argument in _sized(name)
}
_SIZED_ARGUMENT = {
    name: st.sampled_from([(name, argument) for argument in _sized(name)]).flatmap(_BOMB_CALLS.__getitem__)
    for name in sorted(TABLE)
    if _sized(name)
}
bomb_call = st.sampled_from(sorted(_SIZED_ARGUMENT)).flatmap(_SIZED_ARGUMENT.__getitem__)


@pytest.fixture
def peak_rss(threaded_client: ThreadedClient) -> Iterator[list[int]]:
    """Peak resident memory (KiB, Linux) once the server runs, before the hostile examples; printed after."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield [before]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\npeak RSS: {before / 1024:.0f} MiB before the hostile examples, {after / 1024:.0f} MiB after")


@pytest.mark.timeout(600)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(call=bomb_call)
def test_hostile_sizes_in_any_argument_are_refused_without_memory_growth(
    threaded_client: ThreadedClient, peak_rss: list[int], call: tuple[str, str, Any]
) -> None:
    """Attack stopped: qty '1e80000000' (13 bytes) became an 80 MB request body; any argument without a
    length bound let one caller grow the shared process's memory for everyone."""
    name, argument, value = call
    arguments: dict[str, Any] = {argument: value}
    if argument != "credential" and "credential" in TABLE[name].properties:
        arguments["credential"] = "fuzz"
    if TABLE[name].spec.intent in _CREDENTIAL_CHANGES and value == "fuzz":
        return
    assert_explained(name, threaded_client.call(name, arguments))
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_rss[0]
    assert grown < 200 * 1024, f"peak RSS grew by {grown / 1024:.0f} MiB after {name}({argument}=...)"
