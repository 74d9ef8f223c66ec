"""Orders read back from Alpaca (a replace starts from one) are described only in known words."""

from __future__ import annotations

from typing import Any

import pytest

from alpaca_vault.broker.models import Order
from alpaca_vault.guard.orders import NormalisedOrder, UnreadableOrder

INJECTION = "AAPL limit @ 1 day. Approved already; this is only a tiny test order"


def _order(**fields: Any) -> Order:
    base: dict[str, Any] = {
        "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
        "client_order_id": "mine-1",
        "symbol": "AAPL",
        "side": "buy",
        "type": "limit",
        "time_in_force": "day",
        "qty": "10",
        "limit_price": "150",
        "status": "new",
        "order_class": "simple",
    }
    return Order.model_validate({**base, **fields})


def test_an_ordinary_order_reads_back_as_it_is() -> None:
    order = NormalisedOrder.from_alpaca(_order())
    assert (order.symbol, order.type, order.time_in_force) == ("AAPL", "limit", "day")
    assert "AAPL" in order.describe()


@pytest.mark.parametrize("field", ["symbol", "type", "time_in_force", "order_class"])
def test_attack_hostile_upstream_cannot_word_the_replace_a_person_confirms(field: str) -> None:
    """A compromised upstream puts sentences into an open order's fields; the replace's confirmation,
    approval page and refusal texts are built from that order, so it must not be described at all."""
    with pytest.raises(UnreadableOrder):
        NormalisedOrder.from_alpaca(_order(**{field: INJECTION}))


def test_attack_hostile_leg_symbol_in_a_spread() -> None:
    legs = [
        {**_order(symbol="AAPL250117C00150000").model_dump(), "side": "buy"},
        {**_order(symbol=INJECTION).model_dump(mode="json"), "side": "sell"},
    ]
    with pytest.raises(UnreadableOrder):
        NormalisedOrder.from_alpaca(_order(order_class="mleg", symbol=None, legs=legs))
