"""JSON views of the books in Alpaca's shapes: orders, account, positions, assets, activities.

Pure functions of the books, the price path and the clock; the caller holds the lock.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from alpaca_vault.simulator.assets import HARD_TO_BORROW, Asset
from alpaca_vault.simulator.books import (
    ZERO,
    Account,
    Fill,
    Order,
    Position,
    equity_at,
    held_for_orders,
    money,
    number,
    reserved_buying_power,
)
from alpaca_vault.simulator.clock import NEW_YORK, MarketClock, iso
from alpaca_vault.simulator.prices import PricePath

_PCT = Decimal("0.0000000001")


def order_json(order: Order, nested: bool = True) -> dict[str, Any]:
    def opt(v: float | None) -> str | None:
        return iso(v) if v is not None else None

    def dec(v: Decimal | None) -> str | None:
        return number(v) if v is not None else None

    multi_leg = order.order_class == "mleg" and order.parent is None
    data = {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at or order.created_at),
        "submitted_at": iso(order.created_at),
        "filled_at": opt(order.filled_at),
        "expired_at": opt(order.expired_at),
        "canceled_at": opt(order.canceled_at),
        "failed_at": opt(order.failed_at),
        "replaced_at": opt(order.replaced_at),
        "replaced_by": order.replaced_by,
        "replaces": order.replaces,
        # A multi-leg order has no single asset: Alpaca leaves these empty on the parent.
        "asset_id": "" if multi_leg else order.asset.id,
        "symbol": "" if multi_leg else order.asset.symbol,
        "asset_class": "" if multi_leg else order.asset.asset_class,
        "notional": dec(order.notional),
        "qty": dec(order.qty),
        "filled_qty": number(order.filled_qty),
        "filled_avg_price": dec(order.filled_avg_price),
        "order_class": "" if order.order_class == "simple" else order.order_class,  # Alpaca writes ""
        "order_type": order.type,
        "type": order.type,
        "side": "" if multi_leg else order.side,
        "position_intent": order.position_intent,
        "time_in_force": order.time_in_force,
        "limit_price": dec(order.limit_price),
        "stop_price": dec(order.stop_price),
        "status": order.status,
        "extended_hours": order.extended_hours,
        "legs": [order_json(leg, nested) for leg in order.legs] if (nested and order.legs) else None,
        "trail_percent": dec(order.trail_percent),
        "trail_price": dec(order.trail_price),
        "hwm": dec(order.hwm),
        "subtag": None,
        "source": None,
        "expires_at": opt(order.expires_at),
    }
    if order.ratio_qty is not None:
        data["ratio_qty"] = number(order.ratio_qty)
    return data


def account_json(account: Account, prices: PricePath, clock: MarketClock) -> dict[str, Any]:
    now = clock.now()
    long_value = ZERO
    short_value = ZERO
    for p in account.positions.values():
        value = p.qty * prices.price(p.asset.symbol, now) * p.asset.multiplier
        if p.qty > 0:
            long_value += value
        else:
            short_value += value
    equity = account.cash + long_value + short_value
    last_close = clock.last_close(now)
    last_equity = equity_at(account, prices, last_close)
    buying_power = max(ZERO, account.cash - reserved_buying_power(account, prices, now))
    blocked = account.status != "ACTIVE"
    config = account.configurations
    options_level = int(config.get("max_options_trading_level", 3))
    return {
        "id": account.id,
        "admin_configurations": {},
        "user_configurations": None,
        "account_number": account.account_number,
        "status": account.status,
        "crypto_status": account.status,
        "options_approved_level": 3,  # paper accounts are approved for every level
        "options_trading_level": options_level,
        "currency": "USD",
        "buying_power": money(buying_power),
        "regt_buying_power": money(buying_power),
        "daytrading_buying_power": "0",
        "effective_buying_power": money(buying_power),
        "non_marginable_buying_power": money(buying_power),
        "options_buying_power": money(buying_power),
        "bod_dtbp": "0",
        "cash": money(account.cash),
        "accrued_fees": "0",
        "portfolio_value": money(equity),
        "pattern_day_trader": False,
        "trading_blocked": blocked,
        "transfers_blocked": blocked,
        "account_blocked": blocked,
        "created_at": iso(account.created_at),
        "trade_suspended_by_user": bool(config.get("suspend_trade", False)),
        "multiplier": "1",
        "shorting_enabled": False,
        "equity": money(equity),
        "last_equity": money(last_equity),
        "long_market_value": money(long_value),
        "short_market_value": money(short_value) if short_value else "0",
        "position_market_value": money(long_value - short_value),
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "daytrade_count": 0,
        "balance_asof": datetime.fromtimestamp(last_close, NEW_YORK).date().isoformat(),
        "crypto_tier": 1,
        "intraday_adjustments": "0",
        "pending_reg_taf_fees": "0",
    }


def position_json(
    account: Account, position: Position, prices: PricePath, clock: MarketClock
) -> dict[str, Any]:
    now = clock.now()
    asset = position.asset
    current = prices.price(asset.symbol, now)
    lastday = prices.price(asset.symbol, clock.last_close(now))
    market_value = position.qty * current * asset.multiplier
    unrealized = market_value - position.cost_basis
    plpc = unrealized / abs(position.cost_basis) if position.cost_basis else ZERO
    intraday = position.qty * (current - lastday) * asset.multiplier
    lastday_value = abs(position.qty * lastday * asset.multiplier)
    change = (current - lastday) / lastday if lastday else ZERO
    values = {
        "avg_entry_price": number(position.avg_entry_price.quantize(Decimal("0.0001"))),
        "market_value": money(market_value),
        "cost_basis": money(position.cost_basis),
        "unrealized_pl": money(unrealized),
        "unrealized_plpc": number(plpc.quantize(_PCT)),
        "unrealized_intraday_pl": money(intraday),
        "unrealized_intraday_plpc": number(
            (intraday / lastday_value if lastday_value else ZERO).quantize(_PCT)
        ),
        "current_price": number(current),
        "lastday_price": number(lastday),
        "change_today": number(change.quantize(_PCT)),
    }
    held = held_for_orders(account, asset) if position.qty > 0 else ZERO
    available = max(ZERO, position.qty - held) if position.qty > 0 else position.qty
    return {
        "asset_id": asset.id,
        "symbol": asset.position_symbol,
        "exchange": asset.exchange,
        "asset_class": asset.asset_class,
        "asset_marginable": not asset.is_crypto and not asset.is_option,
        "qty": number(position.qty),
        "side": "long" if position.qty > 0 else "short",
        **values,
        "qty_available": number(available),
    }


def asset_json(asset: Asset) -> dict[str, Any]:
    crypto = asset.is_crypto
    data: dict[str, Any] = {
        "id": asset.id,
        "class": asset.asset_class,
        "exchange": asset.exchange,
        "symbol": asset.symbol,
        "name": asset.name,
        "status": "active",
        "tradable": True,
        "marginable": not crypto,
        "maintenance_margin_requirement": 100 if crypto else 30,
        "margin_requirement_long": "100" if crypto else "30",
        "margin_requirement_short": "100",
        "shortable": not crypto,
        "easy_to_borrow": not crypto and asset.symbol not in HARD_TO_BORROW,
        "fractionable": asset.fractionable,
        "attributes": ["fractional_eh_enabled"] if asset.fractionable and not crypto else [],
    }
    if crypto:
        data.update(
            {"min_order_size": "0.000001", "min_trade_increment": "0.000000001", "price_increment": "0.01"}
        )
    return data


def fill_activity_json(account: Account, fill: Fill) -> dict[str, Any]:
    """A FILL activity (or an option exercise, assignment or expiry), with ``_t`` (its unix time)
    for the route to filter on and drop."""
    if fill.activity_type != "FILL":
        signed = fill.qty if fill.order.side == "buy" else -fill.qty
        return {
            "id": fill.id,
            "account_id": account.id,
            "activity_type": fill.activity_type,
            "date": datetime.fromtimestamp(fill.t, NEW_YORK).date().isoformat(),
            "net_amount": money(fill.cash_delta),
            "description": "",
            "symbol": fill.order.asset.symbol,
            "qty": number(signed),
            "per_share_amount": number(fill.price),
            "status": "executed",
            "_t": fill.t,
        }
    return {
        "id": fill.id,
        "account_id": account.id,
        "activity_type": "FILL",
        "transaction_time": iso(fill.t),
        "type": "fill" if fill.leaves_qty == 0 else "partial_fill",
        "price": number(fill.price),
        "qty": number(fill.qty),
        "side": fill.order.side,
        "symbol": fill.order.asset.symbol,
        "leaves_qty": number(fill.leaves_qty),
        "order_id": fill.order.id,
        "cum_qty": number(fill.cum_qty),
        "order_status": fill.order_status,
        "_t": fill.t,
    }


def admin_account_json(account: Account, secret: bool = False) -> dict[str, Any]:
    data = {
        "id": account.id,
        "api_key": account.api_key,
        "account_number": account.account_number,
        "status": account.status,
        "cash": str(account.cash),
    }
    if secret:
        data["secret_key"] = account.secret_key
    return data
