"""Alpaca's rules, each pinned on the wire: status codes and JSON error bodies a client receives."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from tests.fixtures.simulator import SimAccount, SimulatorHandle


@pytest.fixture
def http(simulator: SimulatorHandle, sim_account: SimAccount) -> httpx2.Client:
    client = httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers, timeout=10)
    yield client
    client.close()


def _market(symbol: str = "AAPL", qty: str = "1", side: str = "buy", **kw: Any) -> dict[str, Any]:
    return {"symbol": symbol, "qty": qty, "side": side, "type": "market", "time_in_force": "day", **kw}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"APCA-API-KEY-ID": "PKNOTAKEY0000000000"},
        {"APCA-API-KEY-ID": "PKNOTAKEY0000000000", "APCA-API-SECRET-KEY": "x" * 40},
    ],
    ids=["missing", "no-secret", "unknown-key"],
)
@pytest.mark.parametrize("path", ["/v2/account", "/v2/orders", "/v2/stocks/AAPL/quotes/latest"])
def test_missing_or_unknown_keys_get_401(
    simulator: SimulatorHandle, headers: dict[str, str], path: str
) -> None:
    response = httpx2.get(simulator.base_url + path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"code": 40110000, "message": "request is not authorized"}


def test_right_key_wrong_secret_gets_401(simulator: SimulatorHandle, sim_account: SimAccount) -> None:
    headers = {
        "APCA-API-KEY-ID": sim_account.api_key,
        "APCA-API-SECRET-KEY": sim_account.secret_key[:-1] + "!",
    }
    response = httpx2.get(simulator.base_url + "/v2/account", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"code": 40110000, "message": "request is not authorized"}


def test_alpaca_py_sees_401_as_api_error(simulator: SimulatorHandle) -> None:
    client = TradingClient("PKWRONGWRONGWRONG000", "wrong" * 8, paper=True, url_override=simulator.base_url)
    with pytest.raises(APIError) as caught:
        client.get_account()
    assert caught.value.status_code == 401
    assert caught.value.code == 40110000


def test_insufficient_buying_power_is_403(simulator: SimulatorHandle) -> None:
    poor = simulator.new_account(cash="1000")
    response = httpx2.post(
        simulator.base_url + "/v2/orders", headers=poor.headers, json=_market("SPY", qty="100")
    )
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == 40310000
    assert body["message"] == "insufficient buying power"
    assert body["buying_power"] == "1000.00"
    assert simulator.orders(poor.api_key) == []


def test_open_orders_consume_buying_power(simulator: SimulatorHandle) -> None:
    account = simulator.new_account(cash="1000")
    client = TradingClient(account.api_key, account.secret_key, paper=True, url_override=simulator.base_url)
    client.submit_order(
        LimitOrderRequest(
            symbol="KO", qty=900, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=1.0
        )
    )  # far below the market: it rests and holds 900 of the 1000 cash
    with pytest.raises(APIError) as caught:
        client.submit_order(
            LimitOrderRequest(
                symbol="KO", qty=150, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=1.0
            )
        )
    assert caught.value.status_code == 403
    assert caught.value.code == 40310000


def test_selling_more_than_held_is_403(http: httpx2.Client) -> None:
    assert http.post("/v2/orders", json=_market("AAPL", qty="2")).status_code == 200
    response = http.post("/v2/orders", json=_market("AAPL", qty="5", side="sell"))
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == 40310000
    assert body["message"] == "insufficient qty available for order (requested: 5, available: 2)"
    assert body["existing_qty"] == "2"


def test_reused_client_order_id_is_422(
    http: httpx2.Client, simulator: SimulatorHandle, sim_account: SimAccount
) -> None:
    first = http.post("/v2/orders", json=_market(client_order_id="strategy-42"))
    assert first.status_code == 200
    second = http.post("/v2/orders", json=_market(client_order_id="strategy-42"))
    assert second.status_code == 422
    assert second.json() == {"code": 40010001, "message": "client_order_id must be unique"}
    assert len(simulator.orders(sim_account.api_key)) == 1


def test_client_order_id_is_unique_per_account_only(simulator: SimulatorHandle) -> None:
    for _ in range(2):
        account = simulator.new_account()
        response = httpx2.post(
            simulator.base_url + "/v2/orders",
            headers=account.headers,
            json=_market(client_order_id="shared-id"),
        )
        assert response.status_code == 200


def test_cancel_filled_order_is_422(http: httpx2.Client) -> None:
    order = http.post("/v2/orders", json=_market()).json()
    assert order["status"] == "filled"
    response = http.delete(f"/v2/orders/{order['id']}")
    assert response.status_code == 422
    assert response.json() == {"code": 42210000, "message": 'order is already in "filled" state'}


def test_cancel_filled_order_via_alpaca_py(trading: TradingClient) -> None:
    order = trading.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    with pytest.raises(APIError) as caught:
        trading.cancel_order_by_id(order.id)
    assert caught.value.status_code == 422
    assert caught.value.code == 42210000


def test_replace_filled_order_is_422(http: httpx2.Client) -> None:
    order = http.post("/v2/orders", json=_market()).json()
    response = http.patch(f"/v2/orders/{order['id']}", json={"qty": "3"})
    assert response.status_code == 422
    assert response.json()["code"] == 42210000


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH"])
def test_unknown_order_is_404(http: httpx2.Client, method: str) -> None:
    response = http.request(
        method, f"/v2/orders/{uuid.uuid4()}", json={"qty": "1"} if method == "PATCH" else None
    )
    assert response.status_code == 404
    assert response.json() == {"code": 40410000, "message": "order not found"}


def test_another_accounts_order_is_404(simulator: SimulatorHandle, http: httpx2.Client) -> None:
    other = simulator.new_account()
    order = httpx2.post(simulator.base_url + "/v2/orders", headers=other.headers, json=_market()).json()
    assert http.get(f"/v2/orders/{order['id']}").status_code == 404


def test_unknown_client_order_id_and_position_are_404(http: httpx2.Client) -> None:
    response = http.get("/v2/orders:by_client_order_id", params={"client_order_id": "never-sent"})
    assert response.status_code == 404
    assert response.json()["code"] == 40410000
    response = http.get("/v2/positions/AAPL")
    assert response.status_code == 404
    assert response.json() == {"code": 40410000, "message": "position does not exist"}
    assert http.delete("/v2/positions/AAPL").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_market(symbol="NOPE"), 'asset "NOPE" not found'),
        (_market(qty="0"), "qty must be > 0"),
        ({**_market(), "side": "hold"}, "side must be buy or sell"),
        ({**_market(), "type": "iceberg"}, "invalid order type: 'iceberg'"),
        ({**_market(), "time_in_force": "forever"}, "invalid time_in_force: 'forever'"),
        ({k: v for k, v in _market().items() if k != "qty"}, "qty or notional is required"),
        ({**_market(), "notional": "100"}, "only one of qty or notional may be specified"),
        ({**_market(), "type": "limit"}, "limit_price is required for limit orders"),
        ({**_market(), "type": "stop"}, "stop_price is required for stop orders"),
        ({**_market(qty="1.5"), "time_in_force": "gtc"}, "fractional orders must be DAY orders"),
        (_market(symbol="GME", qty="0.5"), "requested asset GME is not fractionable"),
        (_market(symbol="BTC/USD", qty="0.1"), "crypto orders only accept time_in_force gtc or ioc"),
        (
            {**_market(), "type": "trailing_stop"},
            "trailing_stop orders require exactly one of trail_price or trail_percent",
        ),
        ({**_market(), "order_class": "bracket"}, "bracket orders require take_profit and stop_loss"),
        ({**_market(), "extended_hours": True}, "extended hours orders must be DAY limit orders"),
        (
            {**_market(), "type": "limit", "limit_price": "100.005"},
            "invalid limit_price 100.005. sub-penny increment does not fulfill minimum pricing criteria",
        ),
    ],
)
def test_invalid_orders_are_422(
    http: httpx2.Client,
    simulator: SimulatorHandle,
    sim_account: SimAccount,
    body: dict[str, Any],
    message: str,
) -> None:
    response = http.post("/v2/orders", json=body)
    assert response.status_code == 422
    assert response.json()["message"] == message
    assert response.json()["code"] in (40010001, 42210000)
    assert simulator.orders(sim_account.api_key) == []


def test_malformed_json_is_400(http: httpx2.Client) -> None:
    response = http.post("/v2/orders", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"code": 40010000, "message": "request body format is invalid"}


def test_bad_query_parameters_are_422(http: httpx2.Client) -> None:
    assert http.get("/v2/orders", params={"status": "sleeping"}).status_code == 422
    assert http.get("/v2/orders", params={"limit": "5000"}).status_code == 422
    assert http.get("/v2/orders", params={"after": "yesterday"}).status_code == 422


def test_closed_account_cannot_trade(simulator: SimulatorHandle) -> None:
    account = simulator.new_account(status="ACCOUNT_CLOSED")
    base = simulator.base_url
    details = httpx2.get(base + "/v2/account", headers=account.headers).json()
    assert details["status"] == "ACCOUNT_CLOSED"
    assert details["trading_blocked"] is True
    response = httpx2.post(base + "/v2/orders", headers=account.headers, json=_market())
    assert response.status_code == 403
    assert response.json()["code"] == 40310000


def test_unknown_route_is_json_404(http: httpx2.Client) -> None:
    response = http.get("/v2/not-a-route")
    assert response.status_code == 404
    assert response.json()["code"] == 40410000
