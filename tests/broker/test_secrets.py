"""Secret canary: a unique key pair is driven through every path, success and failure, at DEBUG.

The markers must never appear in an exception's str/repr/args (nor anywhere along its
__cause__/__context__ chain or in the locals of the broker/httpx2/httpcore2 frames of its
traceback), nor in any log record, nor on the shared HTTP client after the calls.
"""

from __future__ import annotations

import functools
import logging
import types
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from alpaca_vault.broker import (
    AccountConfigurationUpdate,
    AlpacaAuthError,
    AlpacaClient,
    AlpacaKeys,
    AssetsQuery,
    CorporateActionsQuery,
    NewsQuery,
    OptionChainQuery,
    OptionContractsQuery,
    OrderRequest,
    ReplaceOrderRequest,
    WatchlistRequest,
)
from tests.fixtures.network import dead_url

from .conftest import make_client
from .test_errors import exception_chain

WATCHED_MODULES = ("alpaca_vault.broker", "httpx2", "httpcore2", "stamina", "tenacity")


def frames(tb: types.TracebackType | None) -> list[types.FrameType]:
    found = []
    while tb is not None:
        found.append(tb.tb_frame)
        tb = tb.tb_next
    return found


def local_text(value: Any) -> str:
    """repr, plus the headers of HTTP objects (whose repr leaves them out)."""
    text = repr(value)
    if isinstance(value, httpx2.Response):
        value = value.request
    if isinstance(value, httpx2.Request):
        text += repr(value.headers.raw)
    return text


def leaks(text: str, markers: list[str]) -> list[str]:
    return [m for m in markers if m in text]


def assert_exception_clean(exc: BaseException, markers: list[str]) -> None:
    for linked in exception_chain(exc):
        for text in (str(linked), repr(linked), repr(linked.args), repr(vars(linked))):
            assert not leaks(text, markers), f"{type(linked).__name__} carries a secret: {text[:200]}"
        for frame in frames(linked.__traceback__):
            if not frame.f_globals.get("__name__", "").startswith(WATCHED_MODULES):
                continue
            for name, value in frame.f_locals.items():
                where = f"{frame.f_code.co_qualname} ({frame.f_globals['__name__']})"
                assert not leaks(local_text(value), markers), f"local {name!r} of {where} holds a secret"


@pytest.fixture
def canary(simulator: Any) -> tuple[Any, list[str]]:
    tag = uuid.uuid4().hex
    api_key = f"PKCANARY{tag[:12].upper()}"
    secret = f"canary-secret-{tag}"
    account = simulator.new_account(api_key=api_key, secret_key=secret)
    return account, [api_key, secret, tag]


Scenario = Callable[[AlpacaClient, AlpacaKeys, Any], Awaitable[Any]]


async def _place(client: AlpacaClient, keys: AlpacaKeys, **args: Any) -> Any:
    return await client.place_order(keys, OrderRequest(**{"symbol": "AAPL", "side": "buy", "qty": 1, **args}))


async def _replace_lost(client: AlpacaClient, keys: AlpacaKeys, sim: Any) -> Any:
    resting = await _place(client, keys, type="limit", limit_price=Decimal("1.00"))
    sim.set_fault(match="PATCH /v2/orders/*", lost_response="504", count=1)
    return await client.replace_order(keys, resting.id, ReplaceOrderRequest(limit_price=Decimal("1.10")))


async def _spread(client: AlpacaClient, keys: AlpacaKeys) -> Any:
    page = await client.get_option_contracts(
        keys, OptionContractsQuery(underlying_symbols=["SPY"], type="call", limit=2)
    )
    lower, higher = (c.symbol for c in page.option_contracts)
    return await client.place_order(
        keys,
        OrderRequest(
            order_class="mleg",
            qty=1,
            legs=[{"symbol": lower, "side": "buy"}, {"symbol": higher, "side": "sell"}],
        ),
    )


async def _conflict(client: AlpacaClient, keys: AlpacaKeys) -> Any:
    await _place(client, keys, client_order_id="canary-coid")
    return await _place(client, keys, qty=2, client_order_id="canary-coid")


async def _watchlist(client: AlpacaClient, keys: AlpacaKeys) -> Any:
    created = await client.create_watchlist(keys, WatchlistRequest(name="canary", symbols=["AAPL"]))
    await client.add_to_watchlist(keys, created.id, "MSFT")
    return await client.delete_watchlist(keys, created.id)


# Issue #15's methods: each must run clean ("ok") or fail as named, with no secret anywhere.
NEW_SCENARIOS: list[tuple[str, Scenario, str]] = [
    ("assets", lambda c, k, s: c.list_assets(k, AssetsQuery(limit=5)), "ok"),
    ("latest bars", lambda c, k, s: c.get_latest_bar(k, ["AAPL", "BTC/USD"]), "ok"),
    ("history", lambda c, k, s: c.get_trades(k, "AAPL", limit=3), "ok"),
    ("orderbook", lambda c, k, s: c.get_orderbook(k, "BTC/USD"), "ok"),
    ("screeners", lambda c, k, s: c.get_movers(k), "ok"),
    (
        "contracts",
        lambda c, k, s: c.get_option_contracts(k, OptionContractsQuery(underlying_symbols=["AAPL"], limit=3)),
        "ok",
    ),
    ("chain", lambda c, k, s: c.get_option_chain(k, "AAPL", OptionChainQuery(limit=3)), "ok"),
    ("spread", lambda c, k, s: _spread(c, k), "ok"),
    ("news", lambda c, k, s: c.get_news(k, NewsQuery(limit=2)), "ok"),
    ("corporate actions", lambda c, k, s: c.get_corporate_actions(k, CorporateActionsQuery(limit=2)), "ok"),
    ("watchlist", lambda c, k, s: _watchlist(c, k), "ok"),
    (
        "config",
        lambda c, k, s: c.update_account_configuration(
            k, AccountConfigurationUpdate(trade_confirm_email="none")
        ),
        "ok",
    ),
    ("client_order_id conflict", lambda c, k, s: _conflict(c, k), "ClientOrderIdConflict"),
]


SCENARIOS: list[tuple[str, Scenario]] = [
    ("account", lambda c, k, s: c.get_account(k)),
    ("market order", lambda c, k, s: _place(c, k)),
    ("positions", lambda c, k, s: c.get_positions(k)),
    ("quote", lambda c, k, s: c.get_latest_quote(k, ["AAPL", "BTC/USD"])),
    ("bars", lambda c, k, s: c.get_bars(k, "AAPL", timeframe="1Hour", limit=3)),
    ("snapshot", lambda c, k, s: c.get_snapshot(k, "SPY")),
    ("404", lambda c, k, s: c.get_order(k, str(uuid.uuid4()))),
    ("403", lambda c, k, s: _place(c, k, qty=1_000_000)),
    ("422", lambda c, k, s: _place(c, k, symbol="ZZZZ")),
    ("400-ish argument error", lambda c, k, s: c.cancel_order(k, "../orders")),
    (
        "429 waited out",
        lambda c, k, s: (s.set_fault(match="GET /v2/clock", status=429, count=1), c.get_clock(k))[1],
    ),
    (
        "429 refused",
        lambda c, k, s: (s.set_fault(match="GET /v2/clock", status=429, retry_after=60), c.get_clock(k))[1],
    ),
    ("5xx", lambda c, k, s: (s.set_fault(match="GET /v2/calendar", status=500), c.get_calendar(k))[1]),
    (
        "lost 504",
        lambda c, k, s: (s.set_fault(match="POST /v2/orders", lost_response="504", count=1), _place(c, k))[1],
    ),
    (
        "lost drop",
        lambda c, k, s: (s.set_fault(match="POST /v2/orders", lost_response="drop", count=1), _place(c, k))[
            1
        ],
    ),
    (
        "lost + lookup down",
        lambda c, k, s: (
            s.set_fault(match="POST /v2/orders", lost_response="504", count=1),
            s.set_fault(match="GET /v2/orders:by_client_order_id", status=503),
            _place(c, k),
        )[2],
    ),
    ("lost replace", _replace_lost),
    (
        "close lost",
        lambda c, k, s: (
            s.set_fault(match="DELETE /v2/positions", lost_response="504"),
            c.close_all_positions(k),
        )[1],
    ),
]


async def test_secret_never_leaks(
    simulator: Any, canary: tuple[Any, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    account, markers = canary
    keys = AlpacaKeys(SecretStr(account.api_key), SecretStr(account.secret_key), "paper", str(account.id))
    wrong = AlpacaKeys(SecretStr(account.api_key), SecretStr(f"wrong-{markers[1]}"), "paper", str(account.id))
    client = make_client(simulator)
    slow = make_client(simulator, timeout=0.2)
    dead = make_client(simulator, paper_url=dead_url(), live_url=dead_url(), data_url=dead_url())
    bad_url = make_client(simulator, paper_url="http://[::1", live_url="http://[::1")
    caplog.set_level(logging.DEBUG)
    # Explicitly, whatever an earlier test in this process left: a server built in-process quiets the
    # wire loggers to WARNING (server/logs.py), and this check must see their DEBUG trace.
    for wire in ("httpx2", "httpcore2"):
        caplog.set_level(logging.DEBUG, logger=wire)
    errors: list[BaseException] = []
    outcomes: dict[str, str] = {}
    try:
        runs: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            (name, functools.partial(scenario, client, keys, simulator)) for name, scenario in SCENARIOS
        ]
        runs += [
            (name, functools.partial(scenario, client, keys, simulator))
            for name, scenario, _ in NEW_SCENARIOS
        ]
        runs.append(("invalid URL", lambda: bad_url.get_account(keys)))
        runs += [
            ("401", lambda: client.get_account(wrong)),
            (
                "timeout",
                lambda: (
                    simulator.set_fault(match="GET /v2/account", latency_ms=800),
                    slow.get_account(keys),
                )[1],
            ),
            (
                "hang",
                lambda: (
                    simulator.set_fault(
                        match="POST /v2/orders", lost_response="hang", latency_ms=800, count=1
                    ),
                    _place(slow, keys),
                )[1],
            ),
            ("connection refused", lambda: dead.get_account(keys)),
        ]
        for name, run in runs:
            try:
                result = await run()
                outcomes[name] = "ok"
                assert not leaks(repr(result), markers)
            except Exception as exc:
                outcomes[name] = type(exc).__name__
                errors.append(exc)
            finally:
                simulator.clear_faults()
        # Every path really ran, and the failure paths really failed the way they are named for.
        assert (
            outcomes["account"]
            == outcomes["lost 504"]
            == outcomes["hang"]
            == outcomes["429 waited out"]
            == "ok"
        )
        assert outcomes["401"] == "AlpacaAuthError"
        assert outcomes["403"] == "AlpacaForbidden"
        assert outcomes["404"] == "AlpacaNotFound"
        assert outcomes["422"] == "AlpacaRejected"
        assert outcomes["429 refused"] == "AlpacaRateLimited"
        assert outcomes["5xx"] == "AlpacaUnavailable"
        assert outcomes["timeout"] == "AlpacaTimeout"
        assert outcomes["connection refused"] == "AlpacaConnectionError"
        assert outcomes["lost + lookup down"] == outcomes["close lost"] == "OrderOutcomeUnknown"
        assert outcomes["400-ish argument error"] == "InvalidRequestError"
        assert {name: outcomes[name] for name, _, _ in NEW_SCENARIOS} == {n: o for n, _, o in NEW_SCENARIOS}
        assert outcomes["invalid URL"] == "AlpacaRequestError"

        for error in errors:
            assert_exception_clean(error, markers)

        assert caplog.records, "DEBUG logging captured nothing: the check would be empty"
        httpcore_debug = [
            r for r in caplog.records if r.name.startswith("httpcore2") and r.levelno == logging.DEBUG
        ]
        assert httpcore_debug, "httpcore2's DEBUG trace did not run: the check would not cover it"
        for record in caplog.records:
            text = record.getMessage() + repr(vars(record))
            assert not leaks(text, markers), f"log record from {record.name} carries a secret: {text[:300]}"

        for http in (client._http, slow._http, dead._http):
            assert not any(name.lower().startswith("apca") for name in http.headers)
            assert not leaks(repr(dict(http.headers)), markers)
            assert len(http.cookies.jar) == 0
        assert not leaks(repr(keys), markers)
    finally:
        for c in (client, slow, dead, bad_url):
            await c.aclose()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda s: s + "\n", id="pasted-with-newline"),
        pytest.param(lambda s: " " + s, id="leading-space"),
        pytest.param(lambda s: s[:4] + "é" + s[4:], id="non-ascii"),
        pytest.param(lambda s: s + "\r\nX-Injected: 1", id="header-injection"),
    ],
)
async def test_malformed_secret_is_refused_without_echoing_it(
    damage: Callable[[str], str],
    simulator: Any,
    canary: tuple[Any, list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # HTTP libraries quote an illegal header value in full in their errors (h11: "Illegal header
    # value b'...'"; the str codec: UnicodeEncodeError(..., '<the whole value>', ...)), and httpcore2
    # logs that error at DEBUG. A pasted secret with a stray newline must not reach them.
    account, markers = canary
    keys = AlpacaKeys(SecretStr(account.api_key), SecretStr(damage(markers[1])), "paper", str(account.id))
    client = make_client(simulator)
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(AlpacaAuthError) as caught:
            await client.get_account(keys)
        assert caught.value.status is None
        assert "so it was not sent" in str(caught.value)
        assert_exception_clean(caught.value, markers)
        for record in caplog.records:
            assert not leaks(record.getMessage() + repr(vars(record)), markers), record.name
    finally:
        await client.aclose()
