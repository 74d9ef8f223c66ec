"""Every fault mode, observed from a client: latency, 5xx, 429 + Retry-After, lost responses."""

from __future__ import annotations

import uuid

import httpx2
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient

from alpaca_vault.simulator import FaultSpec, SimulatorConfig, create_app, serve_in_thread
from tests.fixtures.simulator import SimAccount, SimulatorHandle


@pytest.fixture
def http(simulator: SimulatorHandle, sim_account: SimAccount) -> httpx2.Client:
    client = httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers, timeout=10)
    yield client
    client.close()


def _order(client_order_id: str) -> dict[str, str]:
    return {
        "symbol": "AAPL",
        "qty": "1",
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "client_order_id": client_order_id,
    }


def test_latency_makes_a_short_timeout_expire(simulator: SimulatorHandle, http: httpx2.Client) -> None:
    simulator.set_fault(match="GET /v2/clock", latency_ms=400)
    with pytest.raises(httpx2.TimeoutException):
        http.get("/v2/clock", timeout=0.2)
    assert http.get("/v2/clock", timeout=5).status_code == 200
    assert http.get("/v2/account").status_code == 200


def test_numeric_strings_are_accepted(simulator: SimulatorHandle, http: httpx2.Client) -> None:
    simulator.set_fault(match="GET /v2/account", status="503", count="1")
    assert http.get("/v2/account").status_code == 503
    assert http.get("/v2/account").status_code == 200


def test_status_fault_for_the_next_count_requests(simulator: SimulatorHandle, http: httpx2.Client) -> None:
    simulator.set_fault(match="GET /v2/account", status=503, count=2)
    first, second, third = (http.get("/v2/account") for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.json() == {"code": 50310000, "message": "service unavailable"}
    assert simulator.faults() == []  # a spent fault removes itself


def test_status_fault_at_a_rate(simulator: SimulatorHandle, http: httpx2.Client) -> None:
    simulator.set_fault(match="GET /v2/positions", status=500, rate=0.5)
    codes = [http.get("/v2/positions").status_code for _ in range(60)]
    assert set(codes) == {200, 500}
    assert 10 < codes.count(500) < 50


def test_status_429_carries_retry_after(simulator: SimulatorHandle, http: httpx2.Client) -> None:
    simulator.set_fault(match="GET /v2/orders", status=429, retry_after=7, count=1)
    response = http.get("/v2/orders")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["code"] == 42910000


def test_rate_limit_per_minute(simulator: SimulatorHandle, http: httpx2.Client) -> None:
    simulator.set_fault(match="GET /v2/clock", rate_limit_per_minute=3)
    codes = [http.get("/v2/clock").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = http.get("/v2/clock")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert http.get("/v2/account").status_code == 200  # the budget is per matching route


def test_alpaca_py_retries_a_429(simulator: SimulatorHandle, sim_account: SimAccount) -> None:
    client = TradingClient(
        sim_account.api_key, sim_account.secret_key, paper=True, url_override=simulator.base_url
    )
    client._retry, client._retry_wait = 1, 0
    simulator.set_fault(match="GET /v2/account", status=429, count=1)
    assert client.get_account().account_number == sim_account.account_number
    client._retry = 0
    simulator.set_fault(match="GET /v2/account", status=429, count=1)
    with pytest.raises(APIError) as caught:
        client.get_account()
    assert caught.value.status_code == 429


def test_lost_response_504_still_creates_the_order(
    simulator: SimulatorHandle, sim_account: SimAccount, http: httpx2.Client
) -> None:
    simulator.set_fault(match="POST /v2/orders", lost_response="504", count=1)
    client_order_id = f"lost-{uuid.uuid4()}"
    response = http.post("/v2/orders", json=_order(client_order_id))
    assert response.status_code == 504
    assert response.json()["code"] == 50410000
    # The broker did take it: exactly one order, found by its client_order_id.
    assert [o["client_order_id"] for o in simulator.orders(sim_account.api_key)] == [client_order_id]
    found = http.get("/v2/orders:by_client_order_id", params={"client_order_id": client_order_id})
    assert found.status_code == 200 and found.json()["status"] == "filled"
    # A blind resubmission is refused rather than doubled.
    assert http.post("/v2/orders", json=_order(client_order_id)).status_code == 422
    assert len(simulator.orders(sim_account.api_key)) == 1


def test_lost_response_hang_times_the_client_out(
    simulator: SimulatorHandle, sim_account: SimAccount, http: httpx2.Client
) -> None:
    simulator.set_fault(match="POST /v2/orders", lost_response="hang", latency_ms=1500, count=1)
    client_order_id = f"hang-{uuid.uuid4()}"
    with pytest.raises(httpx2.TimeoutException):
        http.post("/v2/orders", json=_order(client_order_id), timeout=0.3)
    orders = simulator.orders(sim_account.api_key)
    assert [o["client_order_id"] for o in orders] == [client_order_id]


def test_lost_response_drop_closes_the_connection(
    simulator: SimulatorHandle, sim_account: SimAccount, http: httpx2.Client
) -> None:
    simulator.set_fault(match="POST /v2/orders", lost_response="drop", count=1)
    client_order_id = f"drop-{uuid.uuid4()}"
    with pytest.raises(httpx2.TransportError):
        http.post("/v2/orders", json=_order(client_order_id))
    assert [o["client_order_id"] for o in simulator.orders(sim_account.api_key)] == [client_order_id]


def test_glob_matching_and_admin_routes_are_exempt(simulator: SimulatorHandle, http: httpx2.Client) -> None:
    simulator.set_fault(match="* *", status=500)
    assert http.get("/v2/account").status_code == 500
    assert http.post("/v2/orders", json=_order("x")).status_code == 500
    assert [f["status"] for f in simulator.faults()] == [500]  # admin still answers
    simulator.clear_faults()
    simulator.set_fault(match="GET /v2/orders/*", status=503)
    assert http.get("/v2/orders").status_code == 200
    assert http.get(f"/v2/orders/{uuid.uuid4()}").status_code == 503


@pytest.mark.parametrize(
    "body",
    [
        {"match": "GET /v2/account", "status": 418},
        {"match": "GET /v2/account", "rate": 2},
        {"match": "GET /v2/account", "lost_response": "maybe"},
        {"match": "GET /v2/account", "colour": "red"},
        {"match": "GET /v2/account", "latency_ms": "slow"},
        {"match": ""},
    ],
)
def test_invalid_fault_is_rejected_with_a_reason(simulator: SimulatorHandle, body: dict[str, object]) -> None:
    response = httpx2.post(simulator.base_url + "/_simulator/faults", json=body)
    assert response.status_code == 422
    assert response.json()["message"]
    assert simulator.faults() == []


def test_faults_configured_at_start() -> None:
    config = SimulatorConfig(faults=[FaultSpec(match="GET /v2/clock", status=503)])
    with serve_in_thread(create_app(config)) as base_url:
        account = httpx2.post(base_url + "/_simulator/accounts", json={}).json()
        headers = {"APCA-API-KEY-ID": account["api_key"], "APCA-API-SECRET-KEY": account["secret_key"]}
        assert httpx2.get(base_url + "/v2/clock", headers=headers).status_code == 503
        assert httpx2.delete(base_url + "/_simulator/faults").status_code == 204
        assert httpx2.get(base_url + "/v2/clock", headers=headers).status_code == 200
        # Reset restores the start configuration, faults included.
        assert httpx2.post(base_url + "/_simulator/reset").status_code == 204
        assert httpx2.get(base_url + "/v2/clock", headers=headers).status_code == 503
        assert httpx2.get(base_url + "/v2/account", headers=headers).status_code == 401  # accounts were reset
