"""Orders: list, look up, place (exactly once), replace, cancel; and exercising option contracts."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Sequence

from . import arguments as args
from .errors import AlpacaRejected, InvalidRequestError
from .models import (
    CancelOrderResult,
    Order,
    OrderRequest,
    OrderSide,
    OrderStatusFilter,
    ReplaceOrderRequest,
    SortDirection,
    is_option_symbol,
)
from .orders import Placement, new_client_order_id, replacement_of, same_new_order, submit_once
from .transport import AlpacaKeys, AlpacaTransport

#: Where an order's life ends; every other status (new, accepted, partially_filled, held, pending_*, ...)
#: is still working or waiting, and an unknown one counts as live rather than be hidden.
FINAL_STATUSES = frozenset({"filled", "canceled", "expired", "replaced", "rejected"})


def is_live(order: Order) -> bool:
    """True while the order can still fill: working, pending, or an exit leg held for its turn."""
    return order.status not in FINAL_STATUSES


class TradingApi(AlpacaTransport):
    async def list_orders(
        self,
        keys: AlpacaKeys,
        *,
        status: OrderStatusFilter = "open",
        limit: int | None = None,
        after: dt.datetime | dt.date | str | None = None,
        until: dt.datetime | dt.date | str | None = None,
        direction: SortDirection | None = None,
        symbols: str | Sequence[str] | None = None,
        nested: bool | None = None,
        side: OrderSide | None = None,
    ) -> list[Order]:
        params = {
            "status": status,
            "limit": args.limit_param(limit, 500),
            "after": args.time_param(after, "after"),
            "until": args.time_param(until, "until"),
            "direction": direction,
            "symbols": ",".join(args.symbols(symbols)) if symbols else None,
            "nested": args.flag(nested),
            "side": side,
        }
        return self._parse_list(Order, await self._get(keys, self._trading(keys, "/v2/orders"), params))

    async def list_live_orders(
        self,
        keys: AlpacaKeys,
        *,
        limit: int = 500,
        after: dt.datetime | dt.date | str | None = None,
        until: dt.datetime | dt.date | str | None = None,
        direction: SortDirection = "desc",
        symbols: str | Sequence[str] | None = None,
        side: OrderSide | None = None,
    ) -> list[Order]:
        """Every order still working, legs nested under their parent, exit legs that wait ("held") included.

        Alpaca's ``status=open`` alone is not enough: a filled bracket/OTO entry is closed, so a rolled-up
        open listing can leave its live exits out, and a held stop-loss leg has been left out of flat open
        listings too (alpaca-trade-api-js#87, alpaca-trade-api-python#322). So this asks for the open
        groups and for the latest closed ones, and keeps every closed parent with a live leg.
        """

        def groups(status: OrderStatusFilter) -> Awaitable[list[Order]]:
            return self.list_orders(
                keys, status=status, limit=500, after=after, until=until, direction=direction,
                symbols=symbols, nested=True, side=side,
            )  # fmt: skip

        open_groups, closed_groups = await asyncio.gather(groups("open"), groups("closed"))
        seen = {order.id for order in open_groups}
        live = open_groups + [
            order
            for order in closed_groups
            if order.id not in seen and any(is_live(leg) for leg in order.legs or [])
        ]
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        live.sort(key=lambda o: o.submitted_at or o.created_at or epoch, reverse=direction == "desc")
        return live[:limit]

    async def get_order(self, keys: AlpacaKeys, order_id: str, *, nested: bool | None = None) -> Order:
        url = self._trading(keys, f"/v2/orders/{args.order_id(order_id)}")
        return self._parse(Order, await self._get(keys, url, {"nested": args.flag(nested)}))

    async def get_order_by_client_id(self, keys: AlpacaKeys, client_order_id: str) -> Order:
        """The order placed under ``client_order_id`` (the matching step of idempotent placement)."""
        url = self._trading(keys, "/v2/orders:by_client_order_id")
        params = {"client_order_id": args.client_order_id(client_order_id)}
        return self._parse(Order, await self._get(keys, url, params))

    async def place_order(self, keys: AlpacaKeys, order: OrderRequest) -> Order:
        """Submit an order exactly once. Its client_order_id (given or generated) is on the result.

        Calling again with the same client_order_id and the same request returns the existing
        order and creates none; the same id with a different request raises ClientOrderIdConflict.
        Raises OrderOutcomeUnknown (with the client_order_id) when it cannot tell whether the
        order exists; look it up with get_order_by_client_id before anything else.
        """
        return (await self.submit_order(keys, order)).order

    async def submit_order(self, keys: AlpacaKeys, order: OrderRequest) -> Placement:
        """Submit an order exactly once (as the method above), also telling whether it is new or Alpaca had it."""
        self._check_may_trade(keys, "place an order")
        client_order_id = order.client_order_id or new_client_order_id()
        body = order.to_alpaca(client_order_id)
        url = self._trading(keys, "/v2/orders")

        async def submit() -> Order:
            return self._parse(Order, await self._call(keys, "POST", url, body=body, idempotent=False))

        async def lookup() -> Order:
            return await self.get_order_by_client_id(keys, client_order_id)

        return await submit_once(submit, lookup, client_order_id, same_new_order(order))

    async def replace_order(self, keys: AlpacaKeys, order_id: str, changes: ReplaceOrderRequest) -> Order:
        """Replace an open order; the result is the new order (its client_order_id given or generated)."""
        self._check_may_trade(keys, "replace an order")
        oid = args.order_id(order_id)
        url = self._trading(keys, f"/v2/orders/{oid}")
        client_order_id = changes.client_order_id or new_client_order_id()
        body = changes.to_alpaca(client_order_id)

        async def submit() -> Order:
            return self._parse(Order, await self._call(keys, "PATCH", url, body=body, idempotent=False))

        async def lookup() -> Order:
            return await self.get_order_by_client_id(keys, client_order_id)

        placement = await submit_once(
            submit,
            lookup,
            client_order_id,
            replacement_of(oid),
            what="order replacement",
            untouched=f"order {oid} was NOT replaced",
        )
        return placement.order

    async def cancel_order(self, keys: AlpacaKeys, order_id: str) -> None:
        """Request cancellation of an open order (Alpaca answers 204; the order turns canceled)."""
        self._check_may_trade(keys, "cancel an order")
        oid = args.order_id(order_id)
        url = self._trading(keys, f"/v2/orders/{oid}")
        try:
            await self._call(keys, "DELETE", url, idempotent=True)
            return
        except AlpacaRejected:
            # A retried cancel can find its own earlier success: the order is already canceled.
            current = await self.get_order(keys, oid)
            if current.status not in ("canceled", "pending_cancel"):
                raise
        return

    async def cancel_all_orders(self, keys: AlpacaKeys) -> list[CancelOrderResult]:
        """Cancel every open order; one result per order (status 200 cancelled, else why not)."""
        self._check_may_trade(keys, "cancel all orders")
        payload = await self._call(keys, "DELETE", self._trading(keys, "/v2/orders"), idempotent=True)
        return self._parse_list(CancelOrderResult, payload)

    async def exercise_option(self, keys: AlpacaKeys, symbol_or_contract_id: str) -> None:
        """Exercise a held option contract (by OCC symbol or contract id) now, before expiry."""
        self._check_may_trade(keys, "exercise an option")
        url = self._trading(keys, f"/v2/positions/{_contract(symbol_or_contract_id)}/exercise")
        # Exercising twice is refused by Alpaca once the position is gone: nothing is repeated blindly.
        await self._unrepeatable(keys, "POST", url, params={}, what="exercising an option")

    async def do_not_exercise_option(self, keys: AlpacaKeys, symbol_or_contract_id: str) -> None:
        """Ask that a held in-the-money contract NOT be exercised automatically at expiry."""
        self._check_may_trade(keys, "mark an option do-not-exercise")
        url = self._trading(keys, f"/v2/positions/{_contract(symbol_or_contract_id)}/do-not-exercise")
        # Setting the same instruction twice has the same effect: safe to retry.
        await self._call(keys, "POST", url, idempotent=True)


def _contract(value: str) -> str:
    """An option contract as a path segment: its OCC symbol, or its contract id (a UUID)."""
    text = value.strip()
    if "-" in text and len(text) == 36:
        return args.uuid_param(text, "option contract id")
    symbol = args.path_symbol(text)
    if not is_option_symbol(symbol):
        raise InvalidRequestError(
            f"{text[:40]!r} is not an option contract: give its OCC symbol (like AAPL250620C00200000) or id."
        )
    return symbol
