"""Failures inside the HTTP client itself become typed broker errors (issue #10 item 11), never raw exceptions."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from alpaca_vault.broker import (
    AlpacaClient,
    AlpacaKeys,
    AlpacaRequestError,
    OrderOutcomeUnknown,
    OrderRequest,
)

from .conftest import keys_for, make_client
from .test_errors import assert_only_our_errors


async def test_invalid_configured_url_is_a_typed_error_and_nothing_is_sent(
    simulator: Any, sim_account: Any
) -> None:
    # httpx2.InvalidURL is no httpx2.RequestError: before this fix it escaped the client untyped.
    client = make_client(simulator, paper_url="http://[::1", live_url="http://[::1")
    keys = keys_for(sim_account)
    try:
        with pytest.raises(AlpacaRequestError) as caught:
            await client.get_account(keys)
        assert caught.value.request_sent is False
        assert not caught.value.retryable
        assert str(caught.value) == "The configured Alpaca URL is not a valid URL, so nothing was sent."
        assert_only_our_errors(caught.value)
        # An order that surely never left is reported as such, not as an unknown outcome.
        with pytest.raises(AlpacaRequestError):
            await client.place_order(keys, OrderRequest(symbol="AAPL", side="buy", qty=1))
        assert simulator.orders(sim_account.api_key) == []
    finally:
        await client.aclose()


class _BrokenTransport(httpx2.AsyncBaseTransport):
    """A transport with a bug that quotes the request's headers in its exception (as h11 does)."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.calls += 1
        raise RuntimeError(f"bug while sending {dict(request.headers)}")


async def test_unexpected_client_error_is_typed_and_carries_no_header(sim_account: Any) -> None:
    broken = _BrokenTransport()
    client = AlpacaClient(
        paper_url="http://127.0.0.1:9",
        live_url="http://127.0.0.1:9",
        data_url="http://127.0.0.1:9",
        transport=broken,
    )
    keys: AlpacaKeys = keys_for(sim_account)
    try:
        with pytest.raises(AlpacaRequestError) as caught:
            await client.get_clock(keys)
        assert broken.calls == 1  # the bug really fired, and a bug is not retried
        assert caught.value.request_sent is True
        assert str(caught.value) == "The HTTP client failed unexpectedly (RuntimeError)."
        assert sim_account.secret_key not in repr(vars(caught.value)) + str(caught.value)
        assert_only_our_errors(caught.value)

        # For an order that may have left, the outcome is unknown: looked up (which fails too), never resent.
        with pytest.raises(OrderOutcomeUnknown) as unknown:
            await client.place_order(
                keys, OrderRequest(symbol="AAPL", side="buy", qty=1, client_order_id="bug-1")
            )
        assert unknown.value.client_order_id == "bug-1"
        assert broken.calls == 3  # one POST, one lookup; no second POST
    finally:
        await client.aclose()
