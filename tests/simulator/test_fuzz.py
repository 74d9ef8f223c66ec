"""Malformed input never breaks the simulator: every answer is an Alpaca-shaped error, never a 500."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.simulator import SimAccount, SimulatorHandle

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "AAPL",
            "BTC/USD",
            "buy",
            "sell",
            "market",
            "limit",
            "stop",
            "day",
            "gtc",
            "1e400",
            "-1",
            "NaN",
            "Infinity",
            "0.0000000001",
            "mleg",
            "sell_to_open",
            "buy_to_close",
            "AAPL261218C00190000",
            "SPY261218P00520000",
            "AAPL991231C00001000",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
fields = st.sampled_from(
    [
        "symbol",
        "qty",
        "notional",
        "side",
        "type",
        "time_in_force",
        "limit_price",
        "stop_price",
        "trail_price",
        "trail_percent",
        "order_class",
        "take_profit",
        "stop_loss",
        "client_order_id",
        "extended_hours",
        "position_intent",
        "legs",
    ]
)
bodies = st.dictionaries(fields, values, max_size=8)
leg = st.dictionaries(st.sampled_from(["symbol", "ratio_qty", "side", "position_intent"]), values, max_size=4)
multileg_bodies = st.fixed_dictionaries(
    {"order_class": st.just("mleg"), "legs": st.lists(leg, max_size=5)},
    optional={"qty": values, "type": values, "time_in_force": values, "limit_price": values},
)


@pytest.fixture(scope="module")
def client(simulator: SimulatorHandle) -> httpx2.Client:
    account: SimAccount = simulator.new_account()
    with httpx2.Client(base_url=simulator.base_url, headers=account.headers, timeout=10) as http:
        yield http


def _assert_alpaca_shaped(response: httpx2.Response) -> None:
    assert response.status_code in (200, 204, 400, 403, 404, 422), response.text
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body["code"], int) and isinstance(body["message"], str) and body["message"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_random_order_bodies(client: httpx2.Client, body: dict[str, Any]) -> None:
    _assert_alpaca_shaped(client.post("/v2/orders", json=body))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=multileg_bodies)
def test_random_multileg_bodies(client: httpx2.Client, body: dict[str, Any]) -> None:
    _assert_alpaca_shaped(client.post("/v2/orders", json=body))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(
        [
            ("POST", "/v2/watchlists"),
            ("PATCH", "/v2/account/configurations"),
            ("POST", "/_simulator/news"),
        ]
    ),
    body=st.dictionaries(
        st.sampled_from(
            [
                "name",
                "symbols",
                "symbol",
                "headline",
                "suspend_trade",
                "dtbp_check",
                "max_options_trading_level",
            ]
        ),
        values,
        max_size=4,
    ),
)
def test_random_watchlist_configuration_and_news_bodies(
    client: httpx2.Client, target: tuple[str, str], body: dict[str, Any]
) -> None:
    method, path = target
    answer = client.request(method, path, json=body)
    assert answer.status_code in (200, 201, 204, 400, 403, 404, 422), answer.text
    if answer.status_code >= 400:
        assert isinstance(answer.json()["message"], str)
    client.patch("/v2/account/configurations", json={"suspend_trade": False, "fractional_trading": True})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_random_replace_bodies(client: httpx2.Client, body: dict[str, Any]) -> None:
    resting = client.post(
        "/v2/orders",
        json={
            "symbol": "KO",
            "qty": "1",
            "side": "buy",
            "type": "limit",
            "limit_price": "1",
            "time_in_force": "gtc",
        },
    ).json()
    _assert_alpaca_shaped(client.patch(f"/v2/orders/{resting['id']}", json=body))
    client.delete(f"/v2/orders/{resting['id']}")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(
        [
            "/v2/orders",
            "/v2/stocks/bars",
            "/v2/account/portfolio/history",
            "/v2/account/activities",
            "/v2/calendar",
            "/v2/stocks/quotes",
            "/v2/options/contracts",
            "/v1beta1/options/snapshots/AAPL",
            "/v1beta1/news",
            "/v1/corporate-actions",
            "/v2/corporate_actions/announcements",
            "/v1beta1/screener/stocks/most-actives",
        ]
    ),
    params=st.dictionaries(
        st.sampled_from(
            [
                "status",
                "limit",
                "after",
                "until",
                "direction",
                "symbols",
                "timeframe",
                "start",
                "end",
                "period",
                "page_token",
                "page_size",
                "date",
                "sort",
                "nested",
                "side",
                "feed",
                "type",
                "underlying_symbols",
                "expiration_date",
                "expiration_date_gte",
                "strike_price_gte",
                "types",
                "ca_types",
                "since",
                "top",
                "by",
            ]
        ),
        st.text(max_size=12),
        max_size=5,
    ),
)
def test_random_query_parameters(client: httpx2.Client, path: str, params: dict[str, str]) -> None:
    _assert_alpaca_shaped(client.get(path, params=params))


# issue #15: locates (their errors carry a string code, Alpaca's LocateError) and fixed-income quotes.
locate_bodies = st.dictionaries(
    st.sampled_from(["symbol", "qty", "limit_price", "all_or_none", "extra"]),
    st.one_of(values, st.sampled_from(["GME", "AAPL", 100, 200, 150, "0.05"])),
    max_size=5,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=locate_bodies, key=st.none() | st.text(alphabet="abcdef0123456789-", min_size=1, max_size=140))
def test_random_locate_requests(client: httpx2.Client, body: dict[str, Any], key: str | None) -> None:
    answer = client.post("/v1/locates", json=body, headers={"Idempotency-Key": key} if key else {})
    assert answer.status_code in (201, 400, 422), answer.text
    if answer.status_code == 201:
        locate = answer.json()
        assert locate["status"] in ("active", "rejected") and locate["requested_qty"] % 100 == 0
    else:
        error = answer.json()
        assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/v1/locates", "/v1/locates/quotes", "/v1beta1/fixed_income/latest/quotes"]),
    params=st.dictionaries(
        st.sampled_from(["symbols", "isins", "status", "symbol", "start", "end", "limit", "page_token"]),
        st.one_of(st.text(max_size=12), st.sampled_from(["GME", "US912797SX61", "active", "2026-12-01"])),
        max_size=4,
    ),
)
def test_random_locate_and_fixed_income_queries(
    client: httpx2.Client, path: str, params: dict[str, str]
) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code in (200, 400, 422), answer.text
    if answer.status_code >= 400:
        error = answer.json()
        assert isinstance(error["code"], int | str) and isinstance(error["message"], str) and error["message"]
