"""list_live_orders finds exit legs that Alpaca's own open listing leaves out (issue #11 item 1).

Alpaca has answered ``status=open&nested=true`` with nothing once a bracket's entry filled (the entry
is closed; alpaca-trade-api-js#87), and left a held stop-loss out of flat open listings
(alpaca-trade-api-python#322). The stand-in below answers that way, on loopback, in Alpaca's shapes;
the simulator (which now answers the same way) is covered in tests/tools/test_order_visibility.py and
tests/simulator/test_nested_orders_sdk.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.broker import AlpacaClient, AlpacaKeys
from alpaca_vault.simulator.runner import serve_in_thread

from .conftest import FAST_RETRY


def order(order_id: str, status: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"id": order_id, "client_order_id": f"c-{order_id}", "status": status, "submitted_at": at,
            "created_at": at, "symbol": "KO", "qty": "5", "order_class": "bracket", **fields}  # fmt: skip


FILLED_ENTRY = order(
    "entry-1", "filled", "2026-11-30T15:00:00Z", side="buy", type="market",
    legs=[order("tp-1", "new", "2026-11-30T15:00:00Z", side="sell", type="limit", limit_price="80"),
          order("sl-1", "held", "2026-11-30T15:00:00Z", side="sell", type="stop", stop_price="40")],
)  # fmt: skip
DONE_ENTRY = order(
    "entry-0", "filled", "2026-11-29T15:00:00Z", side="buy", type="market",
    legs=[order("tp-0", "filled", "2026-11-29T15:00:00Z", side="sell", type="limit", limit_price="70"),
          order("sl-0", "canceled", "2026-11-29T15:00:00Z", side="sell", type="stop", stop_price="30")],
)  # fmt: skip
RESTING = order(
    "limit-1", "new", "2026-11-30T16:00:00Z", side="buy", type="limit", limit_price="1", order_class=""
)


@pytest.fixture
def alpaca_2020() -> Iterator[str]:
    async def orders(request: Request) -> Response:
        status = request.query_params.get("status")
        assert request.query_params.get("nested") == "true"
        listing = [RESTING] if status == "open" else [FILLED_ENTRY, DONE_ENTRY] if status == "closed" else []
        return Response(json.dumps(listing), media_type="application/json")

    with serve_in_thread(Starlette(routes=[Route("/v2/orders", orders)])) as url:
        yield url


async def test_a_filled_entry_with_live_exits_is_listed_with_them(alpaca_2020: str) -> None:
    client = AlpacaClient(
        paper_url=alpaca_2020, live_url=alpaca_2020, data_url=alpaca_2020, timeout=2.0, retry=FAST_RETRY
    )
    keys = AlpacaKeys(
        api_key=SecretStr("PKLIVEORDERS00000001"), secret_key=SecretStr("s" * 40), environment="paper",
        limiter_key="c-1",
    )  # fmt: skip
    try:
        live = await client.list_live_orders(keys)
        oldest_first = await client.list_live_orders(keys, direction="asc", limit=1)
    finally:
        await client.aclose()
    # The resting order, then the filled entry whose exits (one held) can still fill; the finished
    # bracket is not listed.
    assert [o.id for o in live] == ["limit-1", "entry-1"]
    assert [(leg.id, leg.status) for leg in live[1].legs or []] == [("tp-1", "new"), ("sl-1", "held")]
    assert [o.id for o in oldest_first] == ["entry-1"]
