"""``--state-file``: the broker's books as JSON, written after every change and read at start.

State is in memory by default. With a state file, accounts (their keys included, so the file is
written owner-only, 0600), orders, positions, fills, watchlists, configurations, the clock's offset
and pinned prices survive a restart; resting orders then catch up on the price path since.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from alpaca_vault.simulator.assets import find_asset
from alpaca_vault.simulator.books import Account, Fill, Order, Position, Watchlist

VERSION = 1
_DECIMALS = {
    "qty",
    "notional",
    "limit_price",
    "stop_price",
    "trail_price",
    "trail_percent",
    "filled_qty",
    "filled_avg_price",
    "hwm",
    "ratio_qty",
}
_SKIP = {"asset", "legs", "parent"}


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _order_json(order: Order) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in dataclasses.fields(order):
        if f.name in _SKIP:
            continue
        value = getattr(order, f.name)
        data[f.name] = _dec(value) if f.name in _DECIMALS else value
    data["symbol"] = order.asset.symbol
    data["parent_id"] = order.parent.id if order.parent else None
    data["leg_ids"] = [leg.id for leg in order.legs]
    return data


def dump(accounts: dict[str, Account], clock_offset: float, pins: dict[str, Decimal]) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for account in accounts.values():
        orders = {o.id: o for o in account.orders}
        for fill in account.fills:  # exercise and expiry book against orders that are never listed
            orders.setdefault(fill.order.id, fill.order)
        out.append(
            {
                "id": account.id,
                "api_key": account.api_key,
                "secret_key": account.secret_key,
                "account_number": account.account_number,
                "status": account.status,
                "initial_cash": str(account.initial_cash),
                "cash": str(account.cash),
                "created_at": account.created_at,
                "last_sync": account.last_sync,
                "configurations": account.configurations,
                "do_not_exercise": sorted(account.do_not_exercise),
                "locates": account.locates,
                "positions": [
                    {"symbol": p.asset.symbol, "qty": str(p.qty), "cost_basis": str(p.cost_basis)}
                    for p in account.positions.values()
                ],
                "orders": [
                    {**_order_json(o), "listed": o.id in account.orders_by_id} for o in orders.values()
                ],
                "listed_order_ids": [o.id for o in account.orders],
                "fills": [
                    {
                        "id": f.id,
                        "order_id": f.order.id,
                        "t": f.t,
                        "qty": str(f.qty),
                        "price": str(f.price),
                        "cash_delta": str(f.cash_delta),
                        "leaves_qty": str(f.leaves_qty),
                        "cum_qty": str(f.cum_qty),
                        "order_status": f.order_status,
                        "activity_type": f.activity_type,
                    }
                    for f in account.fills
                ],
                "watchlists": [
                    {
                        "id": w.id,
                        "name": w.name,
                        "created_at": w.created_at,
                        "updated_at": w.updated_at,
                        "symbols": [a.symbol for a in w.assets],
                    }
                    for w in account.watchlists
                ],
            }
        )
    return {
        "version": VERSION,
        "clock_offset": clock_offset,
        "pins": {k: str(v) for k, v in pins.items()},
        "accounts": out,
    }


def _asset(symbol: str) -> Any:
    asset = find_asset(symbol)
    if asset is None:
        raise ValueError(f"state file names an unknown asset: {symbol!r}")
    return asset


def _load_account(data: dict[str, Any]) -> Account:
    account = Account(
        id=data["id"],
        api_key=data["api_key"],
        secret_key=data["secret_key"],
        account_number=data["account_number"],
        status=data["status"],
        initial_cash=Decimal(data["initial_cash"]),
        cash=Decimal(data["cash"]),
        created_at=data["created_at"],
        last_sync=data["last_sync"],
        configurations=dict(data.get("configurations", {})),
        do_not_exercise=set(data.get("do_not_exercise", [])),
        locates=list(data.get("locates", [])),
    )
    for p in data["positions"]:
        asset = _asset(p["symbol"])
        account.positions[asset.symbol] = Position(asset, Decimal(p["qty"]), Decimal(p["cost_basis"]))
    orders: dict[str, Order] = {}
    links: dict[str, tuple[str | None, list[str]]] = {}
    names = {f.name for f in dataclasses.fields(Order)} - _SKIP
    for raw in data["orders"]:
        fields: dict[str, Any] = {
            k: (Decimal(v) if k in _DECIMALS and v is not None else v) for k, v in raw.items() if k in names
        }
        order = Order(asset=_asset(raw["symbol"]), **fields)
        orders[order.id] = order
        links[order.id] = (raw["parent_id"], raw["leg_ids"])
    for order_id, (parent_id, leg_ids) in links.items():
        order = orders[order_id]
        order.parent = orders.get(parent_id) if parent_id else None
        order.legs = [orders[i] for i in leg_ids]
    for order_id in data["listed_order_ids"]:
        account.add_order(orders[order_id])
    for f in data["fills"]:
        account.fills.append(
            Fill(
                id=f["id"],
                order=orders[f["order_id"]],
                t=f["t"],
                qty=Decimal(f["qty"]),
                price=Decimal(f["price"]),
                cash_delta=Decimal(f["cash_delta"]),
                leaves_qty=Decimal(f["leaves_qty"]),
                cum_qty=Decimal(f["cum_qty"]),
                order_status=f["order_status"],
                activity_type=f["activity_type"],
            )
        )
    for w in data["watchlists"]:
        account.watchlists.append(
            Watchlist(w["id"], w["name"], w["created_at"], w["updated_at"], [_asset(s) for s in w["symbols"]])
        )
    return account


def load(path: Path) -> tuple[list[Account], float, dict[str, Decimal]] | None:
    """(accounts, clock offset, pins) from the file, or None when it does not exist yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data = json.loads(text)
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: unsupported state file version {data.get('version')!r}")
    accounts = [_load_account(a) for a in data["accounts"]]
    return accounts, float(data["clock_offset"]), {k: Decimal(v) for k, v in data["pins"].items()}


def save(path: Path, state: dict[str, Any]) -> None:
    """Write atomically (a temporary file renamed over the old one), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
