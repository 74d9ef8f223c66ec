"""Trading tools: orders and closing positions.

Each tool's intent (registry.py) tells the gate what it changes: the gate refuses live credentials
for those unless live trading is enabled (fail closed), and mints an order's client_order_id before
anything is sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field

from alpaca_vault.broker.errors import AlpacaError
from alpaca_vault.broker.models import (
    OptionLeg,
    OrderRequest,
    ReplaceOrderRequest,
    StopLoss,
    TakeProfit,
    is_crypto_symbol,
)
from alpaca_vault.broker.orders import Placement
from alpaca_vault.tools import voice
from alpaca_vault.tools.errors import OrderDeadlineExceeded
from alpaca_vault.tools.gate import ToolCall, alpaca_call
from alpaca_vault.tools.order_results import (
    CancelAllResult,
    CancelResult,
    CloseAllResult,
    ClosePositionOutcome,
    OrderResult,
    OrdersResult,
    PlacedOrderResult,
)
from alpaca_vault.tools.order_text import describe_order, flatten_live, live_count
from alpaca_vault.tools.params import (
    ClientOrderId,
    CredentialRef,
    InvalidArgument,
    Notional,
    OrderId,
    Percentage,
    Price,
    Quantity,
    Symbol,
    SymbolList,
    TimeInForce,
    TrailPercent,
    symbol_of,
)
from alpaca_vault.tools.results import Continuation, Record, counted, respond
from alpaca_vault.tools.runtime import runtime

PositionIntent = Literal["buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close"]


class Leg(BaseModel):
    """One leg of a multi-leg option order."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=32, description="OCC option symbol.")
    side: Literal["buy", "sell"]
    ratio_qty: int = Field(default=1, ge=1, le=100, description="Contracts of this leg per unit of qty.")
    position_intent: PositionIntent | None = None


OrderSymbol = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=32,
        description="Stock (AAPL), crypto pair (BTC/USD) or OCC option contract (AAPL261218C00190000); "
        "omit for order_class mleg.",
    ),
]
OrderSide = Annotated[Literal["buy", "sell"] | None, Field(description="buy or sell; omit for mleg.")]
OrderQty = Annotated[
    Quantity | None,
    Field(description="Shares, coins (fractions allowed) or whole contracts; for mleg, units of the "
          "leg ratios. Give qty or notional."),
]  # fmt: skip
OrderClass = Annotated[
    Literal["simple", "bracket", "oco", "oto", "mleg"],
    Field(
        description="bracket: entry + take-profit + stop-loss; oco: exit pair; oto: entry + one exit (stocks); "
        "mleg: an option spread given as legs."
    ),
]
PositionIntentArg = Annotated[
    PositionIntent | None, Field(description="Option contracts: opening or closing (default: Alpaca infers).")
]
OrderLegs = Annotated[
    list[Leg] | None,
    Field(min_length=2, max_length=4, description="mleg only: 2-4 option legs (type market or limit, day)."),
]


def request_sent(call: ToolCall) -> OrderRequest:
    """The order request as the gate passed it on (with its client_order_id minted)."""
    assert isinstance(call.order, OrderRequest)
    return call.order


def replacement_sent(call: ToolCall) -> ReplaceOrderRequest:
    """The replacement request as the gate passed it on (with its client_order_id minted)."""
    assert isinstance(call.order, ReplaceOrderRequest)
    return call.order


# Once a person has confirmed an order, its exchange with Alpaca gets at least this long, whatever the
# confirmation took: a confirmed order is not abandoned unsent.
_MIN_EXCHANGE_SECONDS = 5.0


async def _within_deadline(call: ToolCall, deadline: float, started: float) -> Placement:
    """Place the order, answering with its client_order_id when the deadline passes first.

    Clients give up on a tool call after a while (often 30-60 s) and may retry; a retry without the id
    would be a new order. So the call ends first, with the id to look up and to reuse.
    """
    loop = asyncio.get_running_loop()
    until = max(started + deadline, loop.time() + min(deadline, _MIN_EXCHANGE_SECONDS))
    try:
        async with asyncio.timeout_at(until):
            return await call.send(call.broker.submit_order, request_sent(call))
    except TimeoutError:
        failure = OrderDeadlineExceeded(str(call.client_order_id), deadline, call.order_intent)
    raise failure


def order_request(
    *,
    symbol: str | None,
    side: Literal["buy", "sell"] | None,
    qty: Decimal | None,
    notional: Decimal | None,
    type: Literal["market", "limit", "stop", "stop_limit", "trailing_stop"],
    time_in_force: TimeInForce | None,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    trail_price: Decimal | None,
    trail_percent: Decimal | None,
    extended_hours: bool,
    order_class: Literal["simple", "bracket", "oco", "oto", "mleg"],
    take_profit_limit_price: Decimal | None,
    stop_loss_stop_price: Decimal | None,
    stop_loss_limit_price: Decimal | None,
    client_order_id: str | None,
    position_intent: PositionIntent | None = None,
    legs: list[Leg] | None = None,
) -> OrderRequest:
    """The broker request for alpaca_place_order's arguments (alpaca_preview_order builds the same)."""
    if order_class == "mleg":
        if symbol is not None or side is not None:
            raise InvalidArgument("An mleg order has no symbol or side of its own: give them in each leg.")
        if not legs:
            raise InvalidArgument(
                "An mleg order needs legs: 2 to 4 option contracts with side and ratio_qty."
            )
    else:
        if symbol is None or side is None:
            raise InvalidArgument(
                "Give symbol and side (only an order_class='mleg' order goes without them)."
            )
        if legs is not None:
            raise InvalidArgument("legs belong to order_class='mleg' orders only.")
        symbol = symbol_of(symbol)
    if time_in_force is None:
        time_in_force = "gtc" if symbol is not None and is_crypto_symbol(symbol) else "day"
    take_profit = TakeProfit(limit_price=take_profit_limit_price) if take_profit_limit_price else None
    if stop_loss_limit_price is not None and stop_loss_stop_price is None:
        raise InvalidArgument("stop_loss_limit_price needs stop_loss_stop_price (the stop-loss trigger).")
    stop_loss = (
        StopLoss(stop_price=stop_loss_stop_price, limit_price=stop_loss_limit_price)
        if stop_loss_stop_price
        else None
    )
    request = OrderRequest(
        symbol=symbol,
        side=side,
        type=type,
        time_in_force=time_in_force,
        qty=qty,
        notional=notional,
        limit_price=limit_price,
        stop_price=stop_price,
        trail_price=trail_price,
        trail_percent=trail_percent,
        extended_hours=extended_hours,
        client_order_id=client_order_id,
        order_class=order_class,
        take_profit=take_profit,
        stop_loss=stop_loss,
        position_intent=position_intent,
        legs=[OptionLeg(**leg.model_dump()) for leg in legs] if legs else None,
    )
    return request


async def alpaca_place_order(
    ctx: Context[Any, Any],
    symbol: OrderSymbol = None,
    side: OrderSide = None,
    qty: OrderQty = None,
    notional: Annotated[
        Notional | None,
        Field(
            description="Dollar amount instead of qty: market orders only, "
            "time_in_force day (stocks) or gtc/ioc (crypto).",
        ),
    ] = None,
    type: Annotated[
        Literal["market", "limit", "stop", "stop_limit", "trailing_stop"], Field(description="Order type.")
    ] = "market",
    time_in_force: Annotated[
        TimeInForce | None,
        Field(
            description="opg: at the open; cls: at the close. Options take only day, crypto pairs only gtc or "
            "ioc. Default: day (gtc for crypto)."
        ),
    ] = None,
    limit_price: Annotated[Price | None, Field(description="For limit and stop_limit.")] = None,
    stop_price: Annotated[Price | None, Field(description="For stop and stop_limit.")] = None,
    trail_price: Annotated[
        Price | None, Field(description="trailing_stop: trail by this many dollars.")
    ] = None,
    trail_percent: Annotated[
        TrailPercent | None, Field(description="trailing_stop: trail by this percent.")
    ] = None,
    extended_hours: Annotated[
        bool, Field(description="Allow pre/after-market fills (limit orders, day or gtc).")
    ] = False,
    order_class: OrderClass = "simple",
    take_profit_limit_price: Annotated[
        Price | None, Field(description="bracket/oco/oto take-profit limit price.")
    ] = None,
    stop_loss_stop_price: Annotated[
        Price | None, Field(description="bracket/oco/oto stop-loss trigger price.")
    ] = None,
    stop_loss_limit_price: Annotated[
        Price | None, Field(description="Makes the stop-loss leg a stop-limit at this price.")
    ] = None,
    client_order_id: Annotated[
        ClientOrderId | None,
        Field(
            description="Your unique id for this order (generated if omitted; every answer names it). A retry "
            "MUST reuse the id of the first attempt: the same id never creates a second order.",
        ),
    ] = None,
    position_intent: PositionIntentArg = None,
    legs: OrderLegs = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, PlacedOrderResult]:
    """Place an order: stocks, crypto pairs, one option contract (OCC symbol) or an option spread (mleg legs).

    Types market, limit, stop, stop_limit, trailing_stop; qty or notional; bracket/oco/oto exits for
    stocks. Crypto: gtc or ioc, market/limit/stop_limit, fractional qty or notional. Options: whole
    contracts, day, position_intent; mleg: 2-4 legs with ratio_qty, market or limit (net price).

    Arguments are checked before anything reaches Alpaca. If the outcome is unknown or the call times out,
    look the order up with alpaca_get_order(client_order_id=...) or retry with that same client_order_id,
    never a new one: re-sending it returns its existing order (new_order_placed false).
    Live credentials are refused unless the server allows live trading.
    """
    request = order_request(
        symbol=symbol, side=side, qty=qty, notional=notional, type=type, time_in_force=time_in_force,
        limit_price=limit_price, stop_price=stop_price, trail_price=trail_price, trail_percent=trail_percent,
        extended_hours=extended_hours, order_class=order_class, take_profit_limit_price=take_profit_limit_price,
        stop_loss_stop_price=stop_loss_stop_price, stop_loss_limit_price=stop_loss_limit_price,
        client_order_id=client_order_id, position_intent=position_intent, legs=legs,
    )  # fmt: skip
    started = asyncio.get_running_loop().time()
    async with alpaca_call(ctx, credential, order=request) as call:
        placement = await _within_deadline(call, runtime(ctx).order_deadline, started)
        order = call.returned(placement.order)  # the audit record reads the order
    used, environment = call.credential_name, call.resolved.environment
    if placement.new_order_placed:
        summary = f"Order in '{used}' ({environment}): {describe_order(order)}."
    else:
        summary = (
            f"No new order was placed: client_order_id {voice.ident(order.client_order_id)} already names order "
            f"{voice.ident(order.id)} "
            f"in '{used}' ({environment}), which this request repeats. That order: {describe_order(order)}."
        )
    return respond(
        PlacedOrderResult(
            credential=used, environment=environment, order=order, new_order_placed=placement.new_order_placed
        ),
        summary,
    )


async def alpaca_list_orders(
    ctx: Context[Any, Any],
    status: Annotated[
        Literal["open", "closed", "all"],
        Field(description="open: every order still working, exit legs waiting their turn (held) included."),
    ] = "open",
    limit: Annotated[int, Field(ge=1, le=500, description="At most this many (1-500).")] = 50,
    after: Annotated[dt.datetime | None, Field(description="Only orders submitted after this time.")] = None,
    until: Annotated[dt.datetime | None, Field(description="Only orders submitted until this time.")] = None,
    direction: Annotated[Literal["asc", "desc"], Field(description="Sort by submission time.")] = "desc",
    symbols: SymbolList = None,
    nested: Annotated[
        bool,
        Field(description="Nest bracket/oco/oto exit legs under their entry (false: each leg listed alone)."),
    ] = True,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, OrdersResult]:
    """List orders (open by default), newest first.

    Open includes the take-profit and stop-loss legs of a filled bracket/oto entry (the entry is listed
    with its live legs nested), so an empty open list means nothing can still fill.
    """
    clean_symbols = [symbol_of(s) for s in symbols] if symbols else None
    async with alpaca_call(ctx, credential) as call:
        if status == "open":
            orders = await call.send(
                call.broker.list_live_orders,
                limit=limit,
                after=after,
                until=until,
                direction=direction,
                symbols=clean_symbols,
            )
            if not nested:
                orders = flatten_live(orders)[:limit]
        else:
            orders = await call.send(
                call.broker.list_orders,
                status=status,
                limit=limit,
                after=after,
                until=until,
                direction=direction,
                symbols=clean_symbols,
                nested=nested,
            )
    used = call.credential_name
    if status == "open":
        live = sum(live_count(o) for o in orders)
        legs = any(o.legs and o.order_class != "mleg" for o in orders)
        head = f"{counted(live, 'open order')} in '{used}'" + (" (exit legs included)" if legs else "")
    else:
        which = (
            "" if status == "all" else f"{status} "
        )  # "3 orders", "3 closed orders"; never "3 all order(s)"
        head = f"{counted(len(orders), which + 'order')} in '{used}'"
    if orders:
        summary = f"{head}: " + "; ".join(describe_order(o) for o in orders[:20])
        if len(orders) > 20:
            summary += f"; and {len(orders) - 20} more (see data)"
    elif status == "open":
        summary = f"No open orders in '{used}': none working, and no exit legs (bracket, oco, oto) waiting."
    else:
        summary = f"No {'' if status == 'all' else status + ' '}orders in '{used}'."
    return respond(
        OrdersResult(credential=used, orders=orders), summary, records="orders", rest=_next_orders(direction)
    )


def _next_orders(direction: Literal["asc", "desc"]) -> Continuation:
    """The orders after the last one kept, in the listing's order, by submission time."""

    def how(kept: list[Record], omitted: list[Record]) -> str:
        last = kept[-1][1] if kept else None
        at = (last or {}).get("submitted_at") or (last or {}).get("created_at")
        if at is None:
            return "call again with a smaller limit"
        bound = "until" if direction == "desc" else "after"
        return f"call again with {bound}='{at}' and the same other arguments"

    return how


async def alpaca_get_order(
    ctx: Context[Any, Any],
    order_id: Annotated[OrderId | None, Field(description="Alpaca's order id.")] = None,
    client_order_id: Annotated[
        ClientOrderId | None, Field(description="Your client_order_id, instead of order_id.")
    ] = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, OrderResult]:
    """Get one order by its id or by your client_order_id (use this to check an order whose outcome is unknown)."""
    if (order_id is None) == (client_order_id is None):
        raise InvalidArgument("Give exactly one of order_id or client_order_id.")
    async with alpaca_call(ctx, credential) as call:
        if order_id is not None:
            order = await call.send(call.broker.get_order, order_id)
        else:
            order = await call.send(call.broker.get_order_by_client_id, client_order_id or "")
    used, environment = call.credential_name, call.resolved.environment
    return respond(
        OrderResult(credential=used, environment=environment, order=order),
        f"Order in '{used}' ({environment}): {describe_order(order)}.",
    )


async def alpaca_replace_order(
    ctx: Context[Any, Any],
    order_id: Annotated[OrderId, Field(description="The open order to replace.")],
    qty: Annotated[Quantity | None, Field(description="New quantity.")] = None,
    time_in_force: Annotated[TimeInForce | None, Field(description="New time in force.")] = None,
    limit_price: Annotated[Price | None, Field(description="New limit price.")] = None,
    stop_price: Annotated[Price | None, Field(description="New stop price.")] = None,
    trail: Annotated[Price | None, Field(description="New trail_price or trail_percent.")] = None,
    client_order_id: Annotated[
        ClientOrderId | None, Field(description="client_order_id for the replacement.")
    ] = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, OrderResult]:
    """Replace (modify) an open order: Alpaca creates a new order in its place.

    The result is the new order (its own id and client_order_id); its `replaces` field holds the old
    order's id. Give at least one of qty, time_in_force, limit_price, stop_price or trail.
    """
    request = ReplaceOrderRequest(
        qty=qty,
        time_in_force=time_in_force,
        limit_price=limit_price,
        stop_price=stop_price,
        trail=trail,
        client_order_id=client_order_id,
    )
    async with alpaca_call(ctx, credential, order=request) as call:
        order = await call.send(call.broker.replace_order, order_id, replacement_sent(call))
    return respond(
        OrderResult(credential=call.credential_name, environment=call.resolved.environment, order=order),
        f"Replaced order {order_id} in '{call.credential_name}' ({call.resolved.environment}) with: "
        f"{describe_order(order)}.",
    )


async def alpaca_cancel_order(
    ctx: Context[Any, Any],
    order_id: Annotated[OrderId, Field(description="The open order to cancel.")],
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, CancelResult]:
    """Cancel one open order. A filled order cannot be canceled."""
    async with alpaca_call(ctx, credential) as call:
        await call.send(call.broker.cancel_order, order_id)
    return respond(
        CancelResult(
            credential=call.credential_name,
            environment=call.resolved.environment,
            order_id=order_id,
            canceled=True,
        ),
        f"Cancel requested for order {order_id} in '{call.credential_name}' ({call.resolved.environment}). "
        "alpaca_get_order shows its final status.",
    )


async def alpaca_cancel_all_orders(
    ctx: Context[Any, Any], credential: CredentialRef = None
) -> Annotated[CallToolResult, CancelAllResult]:
    """Cancel every open order of the account, the exit legs of brackets, OCO and OTO orders included.

    Afterwards the open orders are read again: any live order the cancel did not cover is named.
    """
    async with alpaca_call(ctx, credential) as call:
        results = await call.send(call.broker.cancel_all_orders)
        still_open = await _not_covered(call, {r.id for r in results if r.ok})
    refused = [r for r in results if not r.ok]
    summary = (
        f"Cancel requested for {len(results) - len(refused)} of {counted(len(results), 'open order')} "
        f"in '{call.credential_name}' ({call.resolved.environment})."
    )
    if refused:
        # Alpaca's reasons are third-party text: they stay in the data block.
        summary += " Not canceled: " + "; ".join(
            f"{voice.ident(r.id)} (HTTP {r.status})" for r in refused[:20]
        )
        summary += ". Alpaca's reasons are in the data block; check the orders with alpaca_get_order."
    if still_open:
        summary += (
            f" Still live and not covered by the cancel: {', '.join(voice.ident(i) for i in still_open[:20])}"
            f"{', ...' if len(still_open) > 20 else ''}; cancel each with alpaca_cancel_order."
        )
    elif still_open is None:
        summary += " Whether anything is still open could not be checked: alpaca_list_orders shows it."
    return respond(
        CancelAllResult(
            credential=call.credential_name,
            environment=call.resolved.environment,
            results=results,
            still_open=still_open,
        ),
        summary,
        rest=lambda kept, omitted: "alpaca_list_orders(status='all') shows every order and its status",
    )


async def _not_covered(call: ToolCall, canceled: set[str]) -> list[str] | None:
    """Live orders after a cancel-all that its answer did not cover (None: the check failed)."""
    try:
        groups = await call.broker.list_live_orders(call.keys)
    except AlpacaError:
        return None
    # Alpaca cancels asynchronously: an order it reported, or one on its way out, is covered.
    return [o.id for o in flatten_live(groups) if o.id not in canceled and o.status != "pending_cancel"]


async def alpaca_close_position(
    ctx: Context[Any, Any],
    symbol: Symbol,
    qty: Annotated[Quantity | None, Field(description="Close only this many shares.")] = None,
    percentage: Annotated[Percentage | None, Field(description="Close this percent of the position.")] = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, ClosePositionOutcome]:
    """Close (liquidate) a position, fully or partly, with a market order."""
    if qty is not None and percentage is not None:
        raise InvalidArgument("Give qty or percentage, not both (or neither to close the whole position).")
    symbol = symbol_of(symbol)
    async with alpaca_call(ctx, credential) as call:
        order = await call.send(
            call.broker.close_position,
            symbol,
            # Plain notation: str(Decimal) would send "1E+1" for an agent's "1e1".
            qty=format(qty, "f") if qty is not None else None,
            percentage=format(percentage, "f") if percentage is not None else None,
        )
    return respond(
        ClosePositionOutcome(
            credential=call.credential_name, environment=call.resolved.environment, order=order
        ),
        f"Closing {symbol} in '{call.credential_name}' ({call.resolved.environment}): {describe_order(order)}.",
    )


async def alpaca_close_all_positions(
    ctx: Context[Any, Any],
    cancel_orders: Annotated[
        bool, Field(description="Cancel every open order first (orders can hold shares a close needs).")
    ] = False,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, CloseAllResult]:
    """Close (liquidate) every open position with market orders, optionally cancelling open orders first.

    Live credentials are refused unless the server allows live trading."""
    async with alpaca_call(ctx, credential) as call:
        results = await call.send(call.broker.close_all_positions, cancel_orders=cancel_orders)
    refused = [r for r in results if not r.ok]
    used, environment = call.credential_name, call.resolved.environment
    summary = (
        f"Closing {len(results) - len(refused)} of {len(results)} position(s) in '{used}' ({environment})"
    )
    summary += " after cancelling open orders" if cancel_orders else ""
    if refused:
        # Alpaca's own reason is third-party text: it stays in the data block.
        summary += "; not closed: " + ", ".join(
            f"{voice.symbol(r.symbol)} (HTTP {r.status})" for r in refused[:20]
        )
        summary += ". Reasons are in the data block"
    summary += ". alpaca_list_orders shows the closing orders."
    result = CloseAllResult(
        credential=used, environment=environment, cancel_orders=cancel_orders, results=results
    )
    return respond(
        result,
        summary,
        rest=lambda kept, omitted: (
            "alpaca_list_orders(status='all') shows the closing orders, "
            "alpaca_get_positions what is still open"
        ),
    )
