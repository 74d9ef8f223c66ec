"""What bounding a tool result costs (issue #11): respond() on order lists that fit and that must be cut.

    python bench/result_size.py [--orders 10,100,500] [--rounds 30]

Each round shapes an alpaca_list_orders result of N orders (Alpaca's JSON shape, one bracket leg pair
each) with the default bound (20 KB), and the same list with the bound lifted, alternating the two
so a drift of the machine's speed hits both alike. Prints the medians in milliseconds and the text
sizes: the difference is the price of fitting (choosing whole records, the `more` note).
"""

from __future__ import annotations

import argparse
import statistics
import time

from alpaca_vault.broker.models import Order
from alpaca_vault.tools.results import DEFAULT_MAX_RESULT_BYTES, ResultShape, respond, shaped
from alpaca_vault.tools.trading import OrdersResult


def _order(n: int) -> dict[str, object]:
    at = f"2026-11-30T15:{n % 60:02d}:00Z"
    base = {"client_order_id": f"client-{n:08d}", "created_at": at, "submitted_at": at, "symbol": "AAPL",
            "asset_class": "us_equity", "qty": "5", "filled_qty": "0", "time_in_force": "gtc",
            "order_class": "bracket"}  # fmt: skip
    legs = [
        {**base, "id": f"tp-{n:08d}", "side": "sell", "type": "limit", "limit_price": "250", "status": "new"},
        {**base, "id": f"sl-{n:08d}", "side": "sell", "type": "stop", "stop_price": "150", "status": "held"},
    ]
    return {**base, "id": f"entry-{n:08d}", "side": "buy", "type": "market", "status": "filled", "legs": legs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", default="10,100,500")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    bounded, lifted = ResultShape(DEFAULT_MAX_RESULT_BYTES), ResultShape(10**9)
    for count in (int(n) for n in args.orders.split(",")):
        result = OrdersResult(
            credential="paper", orders=[Order.model_validate(_order(n)) for n in range(count)]
        )
        times: dict[str, list[float]] = {"bounded": [], "lifted": []}
        sizes: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, shape in (("bounded", bounded), ("lifted", lifted)):
                with shaped(shape):
                    start = time.perf_counter()
                    answer = respond(result, f"{count} orders", records="orders")
                    times[name].append(time.perf_counter() - start)
                sizes[name] = len(answer.content[0].text.encode())  # type: ignore[union-attr]
        print(
            f"{count:>4} orders: bounded {statistics.median(times['bounded']) * 1000:7.2f} ms "
            f"({sizes['bounded']:>7} B) | unbounded {statistics.median(times['lifted']) * 1000:7.2f} ms "
            f"({sizes['lifted']:>7} B)"
        )


if __name__ == "__main__":
    main()
