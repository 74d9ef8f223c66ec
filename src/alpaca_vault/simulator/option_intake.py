"""Option order intake: trading levels, position intents, coverage of short legs, multi-leg orders.

An account's options level (``max_options_trading_level``, 3 by default as on Alpaca paper)
bounds what it may do: 1 covered calls and cash-secured puts, 2 also buying calls and puts,
3 also multi-leg orders. A cash account writes an option only when it is covered: 100 shares per
short call, cash for the strike of each short put, or (in a multi-leg order) a long leg of the same
type that caps the loss.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from alpaca_vault.simulator.assets import Asset, find_asset
from alpaca_vault.simulator.books import ZERO, Account, Order, money
from alpaca_vault.simulator.errors import forbidden, invalid, unprocessable
from alpaca_vault.simulator.intake import (
    POSITION_INTENTS,
    client_order_id_field,
    decimal_field,
    optional_decimal,
    text_field,
)
from alpaca_vault.simulator.prices import PricePath

_LEVEL_NAMES = {1: "covered calls and cash-secured puts", 2: "buying calls and puts", 3: "multi-leg orders"}
MAX_LEGS = 4


def options_level(account: Account) -> int:
    return int(account.configurations.get("max_options_trading_level", 3))


def _require_level(account: Account, level: int) -> None:
    if options_level(account) < level:
        raise forbidden(
            f"account is not approved for {_LEVEL_NAMES[level]} (options trading level {options_level(account)}, "
            f"needs {level})"
        )


def resolve_intent(account: Account, contract: Asset, side: str, intent: str | None, qty: Decimal) -> str:
    """The position intent an option order has, inferred from the position when not given."""
    if intent is not None:
        if not intent.startswith(side):
            raise invalid(f"position_intent {intent} does not match side {side}")
        return intent
    held = account.positions.get(contract.symbol)
    held_qty = held.qty if held else ZERO
    if side == "buy":
        return "buy_to_close" if held_qty < 0 else "buy_to_open"
    return "sell_to_close" if held_qty >= qty else "sell_to_open"


def check_single_leg(account: Account, order: Order, prices: PricePath, now: float) -> None:
    """Levels and coverage for a one-contract-type option order; sets its intent."""
    assert order.qty is not None
    intent = resolve_intent(account, order.asset, order.side, order.position_intent, order.qty)
    order.position_intent = intent
    if intent == "buy_to_open":
        _require_level(account, 2)
    elif intent == "sell_to_open":
        _require_level(account, 1)
        _check_cover(account, order.asset, order.qty, prices, now)
        order.opens_short = True
    elif intent == "buy_to_close":
        held = account.positions.get(order.asset.symbol)
        if held is None or -held.qty < order.qty:
            short = -held.qty if held is not None and held.qty < 0 else ZERO
            raise forbidden(
                f"insufficient qty available for order (requested: {order.qty}, available: {short})"
            )
    else:
        _require_level(account, 1)


def _check_cover(
    account: Account, contract: Asset, contracts: Decimal, prices: PricePath, now: float
) -> None:
    """A short call needs 100 free shares a contract; a short put needs cash for its strike."""
    assert contract.underlying is not None and contract.strike is not None
    if contract.option_type == "call":
        shares = account.positions.get(contract.underlying)
        covering = sum(
            (
                -p.qty * 100
                for p in account.positions.values()
                if p.qty < 0 and p.asset.underlying == contract.underlying
            ),
            ZERO,
        )
        free = (shares.qty if shares else ZERO) - covering
        if free < contracts * 100:
            raise forbidden(
                f"uncovered call: selling {contracts} contract(s) of {contract.symbol} needs "
                f"{contracts * 100} shares of {contract.underlying}, {max(ZERO, free)} are free"
            )
        return
    needed = contract.strike * 100 * contracts
    if needed > account.cash:
        raise forbidden(
            "insufficient buying power",
            buying_power=money(account.cash),
            cost_basis=money(needed),
        )


def build_multileg(account: Account, body: dict[str, Any], prices: PricePath, now: float) -> Order:
    """A ``order_class: mleg`` order: 2 to 4 option legs on one underlying, filled together or not at all."""
    _require_level(account, 3)
    qty = optional_decimal(body, "qty")
    if qty is None or qty <= 0 or qty != qty.to_integral_value():
        raise invalid("qty is required for mleg orders and must be a whole number of spreads")
    if body.get("notional") is not None:
        raise invalid("notional is not supported for mleg orders")
    order_type = text_field(body, "type") or text_field(body, "order_type")
    if order_type not in ("market", "limit"):
        raise invalid(f"invalid order type for mleg orders: {order_type!r} (use market or limit)")
    tif = text_field(body, "time_in_force")
    if tif != "day":
        raise unprocessable("mleg orders must be DAY orders")
    limit_price = optional_decimal(body, "limit_price")
    if order_type == "limit" and limit_price is None:
        raise invalid("limit_price is required for limit orders")
    if order_type == "market" and limit_price is not None:
        raise invalid("market orders cannot have limit_price")
    raw_legs = body.get("legs")
    if not isinstance(raw_legs, list) or not 2 <= len(raw_legs) <= MAX_LEGS:
        raise invalid(f"mleg orders require between 2 and {MAX_LEGS} legs")
    parent = Order(
        id=str(uuid.uuid4()),
        client_order_id=client_order_id_field(account, body),
        asset=Asset("", "", "", "us_option", 0.0),  # placeholder: a spread has no single asset
        side="buy",
        type=order_type,
        time_in_force="day",
        qty=qty,
        notional=None,
        limit_price=limit_price,
        stop_price=None,
        trail_price=None,
        trail_percent=None,
        order_class="mleg",
        extended_hours=False,
        created_at=now,
        updated_at=now,
        last_eval=now,
    )
    seen: set[str] = set()
    for index, raw in enumerate(raw_legs):
        leg = _leg(account, parent, raw, index, seen)
        parent.legs.append(leg)
    parent.asset = parent.legs[0].asset
    underlyings = {leg.asset.underlying for leg in parent.legs}
    if len(underlyings) != 1:
        raise unprocessable("all legs of an mleg order must have the same underlying")
    _check_spread_cover(account, parent, prices, now)
    return parent


def _leg(account: Account, parent: Order, raw: Any, index: int, seen: set[str]) -> Order:
    if not isinstance(raw, dict):
        raise invalid(f"legs[{index}] must be an object with symbol, ratio_qty and side or position_intent")
    symbol = raw.get("symbol")
    contract = find_asset(symbol) if isinstance(symbol, str) else None
    if contract is None or not contract.is_option:
        raise unprocessable(f'legs[{index}]: asset "{symbol}" not found')
    if contract.symbol in seen:
        raise invalid("all legs must have unique symbols")
    seen.add(contract.symbol)
    ratio = decimal_field(raw.get("ratio_qty"), f"legs[{index}].ratio_qty")
    if ratio <= 0 or ratio != ratio.to_integral_value() or ratio > 1000:
        raise invalid(f"legs[{index}].ratio_qty must be a whole number from 1 to 1000")
    intent = text_field(raw, "position_intent")
    if intent is not None and intent not in POSITION_INTENTS:
        raise invalid(f"legs[{index}]: invalid position_intent: {intent!r}")
    side = text_field(raw, "side") or (intent.split("_")[0] if intent else None)
    if side not in ("buy", "sell"):
        raise invalid(f"legs[{index}] needs side buy or sell (or a position_intent)")
    assert parent.qty is not None
    qty = parent.qty * ratio
    leg = Order(
        id=str(uuid.uuid4()),
        client_order_id=str(uuid.uuid4()),
        asset=contract,
        side=side,
        type=parent.type,
        time_in_force=parent.time_in_force,
        qty=qty,
        notional=None,
        limit_price=None,
        stop_price=None,
        trail_price=None,
        trail_percent=None,
        order_class="mleg",
        extended_hours=False,
        created_at=parent.created_at,
        updated_at=parent.created_at,
        position_intent=resolve_intent(account, contract, side, intent, qty),
        ratio_qty=ratio,
        parent=parent,
        last_eval=parent.created_at,
    )
    if leg.position_intent == "sell_to_close":
        held = account.positions.get(contract.symbol)
        if held is None or held.qty < qty:
            available = held.qty if held is not None and held.qty > 0 else ZERO
            raise forbidden(
                f"insufficient qty available for order (requested: {qty}, available: {available})",
                symbol=contract.symbol,
            )
    if leg.position_intent == "buy_to_close":
        held = account.positions.get(contract.symbol)
        if held is None or -held.qty < qty:
            raise forbidden(f"insufficient qty available for order (requested: {qty}, available: 0)")
    leg.opens_short = leg.position_intent == "sell_to_open"
    return leg


def _check_spread_cover(account: Account, parent: Order, prices: PricePath, now: float) -> None:
    """Every short leg is capped by a long leg of the same type (its width is the risk), or covered outright."""
    longs = [leg for leg in parent.legs if leg.side == "buy"]
    risk = ZERO
    for short in (leg for leg in parent.legs if leg.opens_short):
        short_strike = short.asset.strike
        assert short.qty is not None and short_strike is not None
        partners = [leg for leg in longs if leg.asset.option_type == short.asset.option_type]
        capped = sum((leg.qty or ZERO for leg in partners), ZERO) >= short.qty
        if not capped:
            _check_cover(account, short.asset, short.qty, prices, now)
            continue
        best = min(partners, key=lambda leg: abs((leg.asset.strike or ZERO) - short_strike))
        assert best.asset.strike is not None
        width = best.asset.strike - short_strike
        if short.asset.option_type == "put":
            width = -width
        risk += max(ZERO, width) * 100 * short.qty
    debit = max(ZERO, estimated_net_price(parent, prices, now)) * (parent.qty or ZERO) * 100
    if risk + debit > account.cash:
        raise forbidden(
            "insufficient buying power",
            buying_power=money(account.cash),
            cost_basis=money(risk + debit),
        )


def estimated_net_price(parent: Order, prices: PricePath, now: float) -> Decimal:
    """Net debit (positive) or credit (negative) per spread at the touch, or the limit if one is set."""
    if parent.limit_price is not None:
        return parent.limit_price
    return net_price_at(parent, prices, now)


def net_price_at(parent: Order, prices: PricePath, t: float) -> Decimal:
    net = ZERO
    for leg in parent.legs:
        bid, ask = prices.quote(leg.asset.symbol, t)
        ratio = leg.ratio_qty or Decimal(1)
        net += ask * ratio if leg.side == "buy" else -bid * ratio
    return net
