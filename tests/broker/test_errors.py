"""Alpaca's answers map to typed errors carrying status, Alpaca's code and message, and nothing else."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from alpaca_vault.broker import (
    AlpacaAuthError,
    AlpacaClient,
    AlpacaConnectionError,
    AlpacaError,
    AlpacaForbidden,
    AlpacaKeys,
    AlpacaNotFound,
    AlpacaRateLimited,
    AlpacaRejected,
    AlpacaTimeout,
    AlpacaUnavailable,
    OrderRequest,
)
from tests.fixtures.network import dead_url

from .conftest import keys_for, make_client


def exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        pending += [current.__cause__, current.__context__]
    return seen


def assert_only_our_errors(exc: BaseException) -> None:
    """No httpx2 exception (whose .request holds the auth headers) is reachable from ours."""
    for linked in exception_chain(exc):
        assert isinstance(linked, AlpacaError), (
            f"{type(linked).__module__}.{type(linked).__name__} is reachable"
        )
        assert not any(isinstance(v, httpx2.Request | httpx2.Response) for v in vars(linked).values())


async def test_wrong_secret_is_auth_error(broker: AlpacaClient, sim_account: Any) -> None:
    keys = AlpacaKeys(
        SecretStr(sim_account.api_key), SecretStr("not-the-secret"), "paper", str(sim_account.id)
    )
    with pytest.raises(AlpacaAuthError) as caught:
        await broker.get_account(keys)
    error = caught.value
    assert (error.status, error.code, error.message) == (401, 40110000, "request is not authorized")
    # Facts only: what Alpaca said and where; the advice for an agent lives in tools/.
    assert str(error) == "request is not authorized (HTTP 401, Alpaca code 40110000)."
    assert error.as_dict() == {
        "error": "AlpacaAuthError",
        "status": 401,
        "code": 40110000,
        "message": "request is not authorized",
    }
    assert_only_our_errors(error)


async def test_unknown_order_is_not_found(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    with pytest.raises(AlpacaNotFound) as caught:
        await broker.get_order(keys, str(uuid.uuid4()))
    assert caught.value.status == 404
    assert caught.value.code == 40410000
    assert caught.value.message == "order not found"
    with pytest.raises(AlpacaNotFound):
        await broker.get_order_by_client_id(keys, "never-used")
    assert_only_our_errors(caught.value)


async def test_insufficient_buying_power_is_forbidden(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any, sim_account: Any
) -> None:
    with pytest.raises(AlpacaForbidden) as caught:
        await broker.place_order(keys, OrderRequest(symbol="SPY", side="buy", qty=100_000))
    assert caught.value.status == 403
    assert "insufficient buying power" in caught.value.message
    assert simulator.orders(sim_account.api_key) == []
    assert_only_our_errors(caught.value)


async def test_refused_order_is_rejected(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    with pytest.raises(AlpacaRejected) as caught:
        await broker.place_order(keys, OrderRequest(symbol="ZZZZ", side="buy", qty=1))
    assert caught.value.status == 422
    assert "ZZZZ" in caught.value.message
    assert_only_our_errors(caught.value)


async def test_cancel_of_filled_order_is_rejected(broker: AlpacaClient, keys: AlpacaKeys) -> None:
    filled = await broker.place_order(keys, OrderRequest(symbol="KO", side="buy", qty=1))
    with pytest.raises(AlpacaRejected) as caught:
        await broker.cancel_order(keys, filled.id)
    assert caught.value.status == 422
    assert "filled" in caught.value.message


async def test_long_retry_after_is_not_waited_out(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any
) -> None:
    # FAST_RETRY caps Retry-After at 2 s: a longer wait goes back to the caller, with the wait.
    simulator.set_fault(match="GET /v2/account", status=429, retry_after=30)
    with pytest.raises(AlpacaRateLimited) as caught:
        await broker.get_account(keys)
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (429, 42910000, 30.0)
    assert caught.value.retryable
    assert_only_our_errors(caught.value)


async def test_persistent_5xx_gives_up_after_bounded_attempts(
    broker: AlpacaClient, keys: AlpacaKeys, simulator: Any
) -> None:
    simulator.set_fault(match="GET /v2/clock", status=503)
    with pytest.raises(AlpacaUnavailable) as caught:
        await broker.get_clock(keys)
    assert (caught.value.status, caught.value.code) == (503, 50310000)
    assert_only_our_errors(caught.value)


async def test_slow_answer_is_timeout(simulator: Any, sim_account: Any) -> None:
    client = make_client(simulator, timeout=0.2)
    try:
        simulator.set_fault(match="GET /v2/positions", latency_ms=1500)
        with pytest.raises(AlpacaTimeout) as caught:
            await client.get_positions(keys_for(sim_account))
        assert caught.value.status is None
        assert caught.value.request_sent
        assert "0.2s" in str(caught.value)
        assert_only_our_errors(caught.value)
    finally:
        await client.aclose()


async def test_nothing_listening_is_connection_error(simulator: Any, sim_account: Any) -> None:
    url = dead_url()
    client = make_client(simulator, paper_url=url, live_url=url, data_url=url)
    try:
        with pytest.raises(AlpacaConnectionError) as caught:
            await client.get_account(keys_for(sim_account))
        assert not caught.value.request_sent
        assert_only_our_errors(caught.value)
    finally:
        await client.aclose()


async def test_live_keys_use_the_live_url(simulator: Any, sim_account: Any) -> None:
    dead = dead_url()
    client = make_client(simulator, paper_url=dead, data_url=dead)
    try:
        account = await client.get_account(keys_for(sim_account, environment="live"))
        assert account.account_number == sim_account.account_number
        with pytest.raises(AlpacaConnectionError):
            await client.get_account(keys_for(sim_account, environment="paper"))
    finally:
        await client.aclose()


def test_error_text_states_the_facts() -> None:
    error = AlpacaForbidden(403, 40310000, "insufficient buying power")
    assert str(error) == "insufficient buying power (HTTP 403, Alpaca code 40310000)."
    assert repr(error) == "AlpacaForbidden(status=403, code=40310000, message='insufficient buying power')"
    assert error.args == ("insufficient buying power",)
    assert not error.retryable


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    from email.utils import format_datetime

    from alpaca_vault.broker.transport import _parse_retry_after

    assert _parse_retry_after("3") == 3.0
    assert _parse_retry_after(" 0.5 ") == 0.5
    assert _parse_retry_after("-4") == 0.0
    assert _parse_retry_after(None) is None
    assert _parse_retry_after("soon") is None
    in_a_minute = format_datetime(
        datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60), usegmt=True
    )
    waited = _parse_retry_after(in_a_minute)
    assert waited is not None and 50 < waited <= 60


def test_rate_limit_reset_header_is_a_fallback_wait() -> None:
    import time

    from alpaca_vault.broker.transport import _wait_hint

    assert _wait_hint(httpx2.Headers({"Retry-After": "2", "X-RateLimit-Reset": "0"})) == 2.0
    waited = _wait_hint(httpx2.Headers({"X-RateLimit-Reset": str(int(time.time()) + 30)}))
    assert waited is not None and 20 < waited <= 30
    assert _wait_hint(httpx2.Headers({"X-RateLimit-Reset": str(int(time.time()) - 5)})) == 0.0
    assert _wait_hint(httpx2.Headers({})) is None
