"""The broker: every account of one simulator behind one lock.

Each public method takes the lock, brings the account's books up to now (matching), does its
work through :mod:`.intake` (validation), :mod:`.matching` (execution) and :mod:`.views`
(Alpaca's JSON), and returns JSON-ready data. Nothing awaits under the lock, so concurrent
requests from any thread or event loop see consistent state.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterable
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any, cast

from alpaca_vault.simulator import (
    account_config,
    exercise,
    intake,
    option_intake,
    state_file,
    views,
    watchlists,
)
from alpaca_vault.simulator.assets import UNIVERSE, Asset, find_asset
from alpaca_vault.simulator.books import QTY_STEP, ZERO, Account, Order, Position, equity_at, number
from alpaca_vault.simulator.clock import MarketClock, iso
from alpaca_vault.simulator.config import AccountSpec, ClockMode, SimulatorConfig
from alpaca_vault.simulator.errors import BrokerError, forbidden, invalid, not_found, unprocessable
from alpaca_vault.simulator.matching import MatchingEngine
from alpaca_vault.simulator.prices import PricePath

JSON = dict[str, Any]


class Broker:
    """All accounts of one simulator, their books and the market they trade in."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.clock = MarketClock(config.clock, config.report_always_open)
        self.prices = PricePath(config.seed)
        self.engine = MatchingEngine(self.prices, self.clock, config.liquidity)
        self.accounts: dict[str, Account] = {}
        self._account_seq = 0
        self.state_path = Path(config.state_file) if config.state_file else None
        if self.state_path is not None:
            saved = state_file.load(self.state_path)
            if saved is not None:
                accounts, self.clock.offset, pins = saved
                self.accounts = {a.api_key: a for a in accounts}
                self._account_seq = len(accounts)
                for symbol, price in pins.items():
                    self.prices.pin(symbol, price)
        for spec in config.accounts:
            if spec.api_key not in self.accounts:
                self.add_account(spec)

    def persist(self) -> None:
        """Write the books to the state file, when there is one."""
        if self.state_path is None:
            return
        with self.lock:
            state = state_file.dump(self.accounts, self.clock.offset, self.prices.pins())
        state_file.save(self.state_path, state)

    # ------------------------------------------------------------------ accounts

    def add_account(self, spec: AccountSpec) -> Account:
        with self.lock:
            if spec.api_key in self.accounts:
                raise unprocessable(f"an account with api_key {spec.api_key} already exists")
            self._account_seq += 1
            now = self.clock.now()
            account = Account(
                id=str(uuid.uuid4()),
                api_key=spec.api_key,
                secret_key=spec.secret_key,
                account_number=spec.account_number
                or f"PA3{self._account_seq:04d}{secrets.randbelow(10**5):05d}",
                status=spec.status,
                initial_cash=spec.cash,
                cash=spec.cash,
                created_at=now,
                last_sync=now,
            )
            self.accounts[spec.api_key] = account
            return account

    def authenticate(self, api_key: str | None, secret_key: str | None) -> Account | None:
        if not api_key or not secret_key:
            return None
        account = self.accounts.get(api_key)
        if account is None or not secrets.compare_digest(account.secret_key, secret_key):
            return None
        return account

    def sync(self, account: Account, now: float | None = None) -> None:
        with self.lock:
            now = self.clock.now() if now is None else now
            self.engine.sync(account, now)
            exercise.settle_expirations(self.engine, account, self.prices, now)

    def account_json(self, account: Account) -> JSON:
        with self.lock:
            self.sync(account)
            return views.account_json(account, self.prices, self.clock)

    def configurations(self, account: Account) -> JSON:
        with self.lock:
            return account_config.configurations(account.configurations)

    def update_configurations(self, account: Account, body: JSON) -> JSON:
        changes = account_config.validate_update(body)
        with self.lock:
            account.configurations.update(changes)
            return account_config.configurations(account.configurations)

    def price(self, asset: Asset, t: float | None = None) -> Decimal:
        return self.prices.price(asset.symbol, self.clock.now() if t is None else t)

    def equity_series(self, account: Account, times: Iterable[float]) -> list[Decimal]:
        with self.lock:
            self.sync(account)
            return [equity_at(account, self.prices, t) for t in times]

    # ------------------------------------------------------------------ orders

    def submit_order(self, account: Account, body: JSON) -> JSON:
        with self.lock:
            return views.order_json(self._submit(account, body))

    def _submit(self, account: Account, body: JSON) -> Order:
        now = self.clock.now()
        self.sync(account, now)
        if account.status != "ACTIVE":
            raise forbidden("account is not active for trading")
        if account.configurations.get("suspend_trade"):
            raise forbidden("trading is suspended for this account (account configuration suspend_trade)")
        if body.get("order_class") == "mleg":
            order = option_intake.build_multileg(account, body, self.prices, now)
        else:
            order = intake.build_order(account, body, self.prices, now)
            if order.asset.is_option:
                option_intake.check_single_leg(account, order, self.prices, now)
            fractional = order.notional is not None or (order.qty is not None and order.qty % 1 != 0)
            if (
                fractional
                and not order.asset.is_crypto
                and not account.configurations.get("fractional_trading", True)
            ):
                raise forbidden("fractional trading is disabled for this account (account configuration)")
            intake.check_funds(account, order, self.prices, now)
        self.engine.accept(account, order, now)
        self.engine.evaluate(account, order, now, now, submitting=True)
        for leg in order.legs:
            self.engine.evaluate(account, leg, now, now, submitting=True)
        return order

    def _order(self, account: Account, order_id: str) -> Order:
        self.sync(account)
        order = account.orders_by_id.get(order_id)
        if order is None:
            raise not_found("order not found")
        return order

    def get_order(self, account: Account, order_id: str, nested: bool = True) -> JSON:
        with self.lock:
            return views.order_json(self._order(account, order_id), nested)

    def get_order_by_client_id(self, account: Account, client_order_id: str) -> JSON:
        with self.lock:
            self.sync(account)
            order = account.orders_by_client_id.get(client_order_id)
            if order is None:
                raise not_found("order not found")
            return views.order_json(order)

    def list_orders(
        self,
        account: Account,
        *,
        status: str = "open",
        limit: int = 50,
        after: float | None = None,
        until: float | None = None,
        direction: str = "desc",
        nested: bool = False,
        symbols: Iterable[str] | None = None,
        side: str | None = None,
    ) -> list[JSON]:
        with self.lock:
            self.sync(account)
            wanted = {s.upper() for s in symbols} if symbols else None
            chosen = []
            for order in account.orders:
                if nested and order.parent is not None:
                    continue
                # As Alpaca lists them: a held leg is not "open" (though live and cancelable), and
                # rolled up, a group goes by its parent: a filled entry with live exits is "closed".
                live = order.listed_open
                if status == "open" and not live:
                    continue
                if status == "closed" and live:
                    continue
                if (
                    wanted is not None
                    and order.asset.symbol not in wanted
                    and order.asset.position_symbol not in wanted
                ):
                    continue
                if side is not None and order.side != side:
                    continue
                if after is not None and order.created_at <= after:
                    continue
                if until is not None and order.created_at >= until:
                    continue
                chosen.append(order)
            chosen.sort(key=lambda o: o.created_at, reverse=direction == "desc")
            return [views.order_json(o, nested=nested) for o in chosen[:limit]]

    def cancel_order(self, account: Account, order_id: str) -> None:
        with self.lock:
            now = self.clock.now()
            order = self._order(account, order_id)
            if not order.is_open:
                raise unprocessable(f'order is already in "{order.status}" state')
            if order.parent is not None and order.parent.order_class == "mleg":
                raise unprocessable("a leg of a multi-leg order cannot be canceled alone; cancel the order")
            self.engine.close(order, "canceled", now)

    def cancel_all(self, account: Account) -> list[JSON]:
        """``DELETE /v2/orders``: one multi-status entry per top-level order canceled."""
        with self.lock:
            return [
                {"id": order.id, "status": 200, "body": views.order_json(order)}
                for order in self._cancel_all(account)
            ]

    def _cancel_all(self, account: Account) -> list[Order]:
        now = self.clock.now()
        self.sync(account, now)
        canceled = []
        for order in account.open_orders():
            # Every open order is canceled and reported, held legs included: a top-level order
            # takes its legs with it, and the live exits of a filled bracket entry go on their own.
            if order.is_open:
                self.engine.close(order, "canceled", now)
                canceled.append(order)
            elif order.status == "canceled" and order.canceled_at == now and order.parent is not None:
                canceled.append(order)  # a leg just canceled with its parent
        return canceled

    def replace_order(self, account: Account, order_id: str, body: JSON) -> JSON:
        with self.lock:
            now = self.clock.now()
            old = self._order(account, order_id)
            new = intake.build_replacement(account, old, body, now)
            if new.parent is None:
                intake.check_funds(account, new, self.prices, now, replacing=old)
            old.status = "replaced"
            old.replaced_at = now
            old.replaced_by = new.id
            old.updated_at = now
            new.legs = old.legs
            for leg in new.legs:
                leg.parent = new
            old.legs = []
            if old.parent is not None:
                siblings = old.parent.legs
                siblings[siblings.index(old)] = new
            account.add_order(new)
            self.engine.evaluate(account, new, now, now, submitting=True)
            return views.order_json(new)

    # ------------------------------------------------------------------ positions

    def _position(self, account: Account, symbol: str) -> Position:
        self.sync(account)
        asset = find_asset(symbol)
        position = account.positions.get(asset.symbol) if asset else None
        if position is None:
            raise not_found("position does not exist")
        return position

    def positions(self, account: Account) -> list[JSON]:
        with self.lock:
            self.sync(account)
            held = sorted(account.positions.values(), key=lambda p: p.asset.symbol)
            return [views.position_json(account, p, self.prices, self.clock) for p in held]

    def position(self, account: Account, symbol: str) -> JSON:
        with self.lock:
            return views.position_json(account, self._position(account, symbol), self.prices, self.clock)

    def close_position(
        self, account: Account, symbol: str, qty: str | None = None, percentage: str | None = None
    ) -> JSON:
        with self.lock:
            return views.order_json(self._close_position(account, symbol, qty, percentage))

    def _close_position(
        self, account: Account, symbol: str, qty: str | None, percentage: str | None
    ) -> Order:
        position = self._position(account, symbol)
        if qty is not None and percentage is not None:
            raise invalid("only one of qty or percentage may be specified")
        held = abs(position.qty)
        amount = held
        if qty is not None:
            amount = intake.decimal_field(qty, "qty")
            if amount <= 0 or amount > held:
                raise forbidden(
                    f"insufficient qty available for order (requested: {qty}, available: {number(held)})"
                )
        elif percentage is not None:
            pct = intake.decimal_field(percentage, "percentage")
            if not ZERO < pct <= 100:
                raise invalid("percentage must be > 0 and <= 100")
            amount = (held * pct / 100).quantize(QTY_STEP, rounding=ROUND_DOWN)
            if not position.asset.fractionable or position.asset.is_option:
                amount = amount.to_integral_value(rounding=ROUND_DOWN)
        closing_side = "sell" if position.qty > 0 else "buy"
        # Closing first releases shares promised to open orders on that side, as Alpaca does.
        for order in account.open_orders():
            if order.is_open and order.side == closing_side and order.asset is position.asset:
                self.engine.close(order, "canceled", self.clock.now())
        body: JSON = {
            "symbol": position.asset.symbol,
            "qty": str(amount),
            "side": closing_side,
            "type": "market",
            "time_in_force": "gtc" if position.asset.is_crypto else "day",
        }
        if position.asset.is_option:
            body["position_intent"] = "sell_to_close" if closing_side == "sell" else "buy_to_close"
        return self._submit(account, body)

    def close_all_positions(self, account: Account, cancel_orders: bool) -> list[JSON]:
        with self.lock:
            self.sync(account)
            if cancel_orders:
                self._cancel_all(account)
            results = []
            for position in list(account.positions.values()):
                symbol = position.asset.position_symbol
                try:
                    order = self._close_position(account, position.asset.symbol, None, None)
                except BrokerError as error:
                    results.append({"symbol": symbol, "status": error.status, "body": error.body()})
                else:
                    results.append(
                        {
                            "order_id": order.id,
                            "symbol": symbol,
                            "status": 200,
                            "body": views.order_json(order),
                        }
                    )
            return results

    def exercise(self, account: Account, contract: Asset) -> None:
        with self.lock:
            self.sync(account)
            exercise.exercise(self.engine, account, contract, self.clock)

    def do_not_exercise(self, account: Account, contract: Asset) -> None:
        with self.lock:
            self.sync(account)
            position = account.positions.get(contract.symbol)
            if position is None or position.qty <= 0:
                raise not_found("position does not exist")
            account.do_not_exercise.add(contract.symbol)

    # ------------------------------------------------------------------ watchlists

    def watchlists(self, account: Account) -> list[JSON]:
        with self.lock:
            return [watchlists.watchlist_json(account, w, with_assets=False) for w in account.watchlists]

    def watchlist(
        self,
        account: Account,
        action: str,
        *,
        watchlist_id: str | None = None,
        name: str | None = None,
        body: JSON | None = None,
        symbol: str | None = None,
    ) -> JSON | None:
        """One watchlist action (get, create, update, add, remove, delete) by id or by name."""
        with self.lock:
            now = self.clock.now()
            if action == "create":
                return watchlists.watchlist_json(account, watchlists.create(account, body or {}, now))
            found = watchlists.find(account, watchlist_id=watchlist_id, name=name)
            if action == "update":
                found = watchlists.update(account, found, body or {}, now)
            elif action == "add":
                found = watchlists.add(found, body or {}, now)
            elif action == "remove":
                found = watchlists.remove(found, symbol or "", now)
            elif action == "delete":
                watchlists.delete(account, found)
                return None
            return watchlists.watchlist_json(account, found)

    # ------------------------------------------------------------------ history

    def activities(self, account: Account) -> list[JSON]:
        with self.lock:
            self.sync(account)
            return [views.fill_activity_json(account, fill) for fill in account.fills]

    def universe(self) -> list[Asset]:
        return list(UNIVERSE.values())

    # ------------------------------------------------------------------ admin

    def admin_accounts(self) -> list[JSON]:
        with self.lock:
            return [views.admin_account_json(a) for a in self.accounts.values()]

    def admin_account(self, api_key: str | None) -> Account:
        account = self.accounts.get(api_key or "")
        if account is None:
            raise not_found("no simulator account with that api_key")
        return account

    def admin_update_account(self, account: Account, status: str | None, cash: Decimal | None) -> JSON:
        with self.lock:
            if status is not None:
                account.status = status
            if cash is not None:
                account.cash = cash
            return views.admin_account_json(account)

    def admin_orders(self, account: Account) -> list[JSON]:
        with self.lock:
            self.sync(account)
            return [views.order_json(o, nested=False) for o in account.orders]

    def clock_state(self) -> JSON:
        with self.lock:
            return {
                "now": iso(self.clock.now()),
                "offset_seconds": self.clock.offset,
                "mode": self.clock.mode,
            }

    def set_clock(self, advance_seconds: float | None, mode: str | None) -> JSON:
        with self.lock:
            if advance_seconds is not None:
                if advance_seconds < 0:
                    raise invalid("advance_seconds must be >= 0: the simulator's time never runs backwards")
                self.clock.advance(advance_seconds)
            if mode is not None:
                if mode not in ("always_open", "exchange_hours"):
                    raise invalid("mode must be always_open or exchange_hours")
                self.clock.mode = cast(ClockMode, mode)
        return self.clock_state()

    def pin_price(self, asset: Asset, price: Decimal | None) -> JSON:
        with self.lock:
            self.prices.pin(asset.symbol, price)
            return {"symbol": asset.symbol, "price": str(self.price(asset))}
