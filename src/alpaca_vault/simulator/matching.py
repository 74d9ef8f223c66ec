"""The matching engine: when a working order executes, at what price, and what a fill books.

Resting orders are matched lazily: before an account is read or changed, :meth:`sync` checks
its open orders against the price path from their last check up to now (one sample a second,
at most ``_MAX_SAMPLES``), so the outcome depends only on the seed and the clock. The caller
(:class:`~.broker.Broker`) holds the lock.
"""

from __future__ import annotations

import bisect
import uuid
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from alpaca_vault.simulator.books import CENT, QTY_STEP, ZERO, Account, Fill, Order, Position
from alpaca_vault.simulator.clock import NEW_YORK, MarketClock
from alpaca_vault.simulator.option_intake import net_price_at
from alpaca_vault.simulator.prices import PricePath

_MAX_SAMPLES = 2000


def fill_id(t: float) -> str:
    """Alpaca's activity ids: a sortable timestamp, two colons, a uuid."""
    return f"{datetime.fromtimestamp(t, NEW_YORK).strftime('%Y%m%d%H%M%S%f')[:17]}::{uuid.uuid4()}"


class MatchingEngine:
    def __init__(self, prices: PricePath, clock: MarketClock, liquidity: Decimal) -> None:
        self.prices = prices
        self.clock = clock
        self.liquidity = liquidity

    # ------------------------------------------------------------------ booking and the clock

    def accept(self, account: Account, order: Order, now: float) -> None:
        """Book a validated order (and its legs), waiting for the open if the market is closed."""
        equity_day_order = not order.asset.is_crypto and order.time_in_force in ("day", "opg", "cls")
        if self.clock.mode == "exchange_hours" and equity_day_order:
            order.expires_at = self.clock.next_close(now).timestamp()
        if not order.asset.is_crypto and not self.clock.is_open(now):
            order.status = "accepted"
        for o in (order, *order.legs):
            account.add_order(o)
        if order.order_class == "mleg":
            self._set_status(order, order.status, now)

    def sync(self, account: Account, now: float) -> None:
        """Match every working order of the account against the path up to now."""
        if now <= account.last_sync:
            return
        for order in account.open_orders():
            if order.is_open:
                self.evaluate(account, order, order.last_eval, now)
        account.last_sync = now

    def _sample_times(self, start: float, end: float) -> list[float]:
        span = end - start
        if span <= 0:
            return []
        steps = min(_MAX_SAMPLES, max(1, int(span)))
        return [start + span * (i + 1) / steps for i in range(steps)]

    def evaluate(
        self, account: Account, order: Order, start: float, end: float, submitting: bool = False
    ) -> None:
        if not (order.working or order.watching_stop) or (
            order.parent is not None and order.parent.order_class == "mleg"
        ):
            # A multi-leg order's legs execute only together, when their parent does.
            order.last_eval = max(order.last_eval, end)
            return
        if order.order_class == "mleg":
            self._evaluate_multileg(account, order, start, end, submitting)
            return
        times = [end] if submitting else self._sample_times(start, end)
        equity_hours = not order.asset.is_crypto
        stop_at = self._partner_stop_reached(order, times)
        if stop_at is not None:
            # Matched order by order, a take-profit must not fill after the moment its held
            # stop-loss took over: that stop-loss, matched next, replaces it then.
            times = [t for t in times if t < stop_at]
        for t in times:
            if order.expires_at is not None and t >= order.expires_at:
                self.close(order, "expired", order.expires_at)
                return
            if equity_hours and not self.clock.is_open(t):
                continue
            if order.status == "accepted":
                order.status = "new"
            fill_price = self._crossing(order, t, immediate=submitting)
            if order.status == "held":
                if not order.triggered:
                    continue
                self._trigger_stop_loss(order, t)
            if fill_price is not None:
                # Arriving orders take what they need; resting ones meet limited liquidity:
                # one second's worth at the first cross, then more with every second it lasts.
                cap: Decimal | None = None
                if not submitting:
                    if order.crossed_since is None:
                        order.crossed_since = t
                    seconds = Decimal(repr(1 + t - order.crossed_since))
                    whole = order.qty is not None and order.qty == order.qty.to_integral_value()
                    allowed = (self.liquidity * seconds).quantize(
                        Decimal(1) if whole else QTY_STEP, rounding=ROUND_DOWN
                    )
                    cap = allowed - order.filled_qty
                    if cap <= 0:
                        continue
                self.fill(account, order, fill_price, t, cap)
                if not order.is_open:
                    order.last_eval = end
                    return
        order.last_eval = end
        if submitting and order.time_in_force in ("ioc", "fok") and order.is_open:
            self.close(order, "canceled", end)

    def _evaluate_multileg(
        self, account: Account, order: Order, start: float, end: float, submitting: bool
    ) -> None:
        for t in [end] if submitting else self._sample_times(start, end):
            if order.expires_at is not None and t >= order.expires_at:
                self.close(order, "expired", order.expires_at)
                return
            if not self.clock.is_open(t):
                continue
            if order.status == "accepted":
                self._set_status(order, "new", t)
            net = net_price_at(order, self.prices, t)
            if order.type == "market" or (order.limit_price is not None and net <= order.limit_price):
                self._fill_multileg(account, order, net, t)
                break
        order.last_eval = end

    def _set_status(self, order: Order, status: str, t: float) -> None:
        for o in (order, *order.legs):
            o.status = status
            o.updated_at = t

    def _fill_multileg(self, account: Account, order: Order, net: Decimal, t: float) -> None:
        """Every leg at its touch, or none: a closing leg without its position, or too little cash, rejects all."""
        assert order.qty is not None
        cost = ZERO
        for leg in order.legs:
            assert leg.qty is not None
            held = account.positions.get(leg.asset.symbol)
            held_qty = held.qty if held else ZERO
            if leg.position_intent == "sell_to_close" and held_qty < leg.qty:
                self.reject(order, t)
                return
            if leg.position_intent == "buy_to_close" and -held_qty < leg.qty:
                self.reject(order, t)
                return
            bid, ask = self.prices.quote(leg.asset.symbol, t)
            cost += (ask if leg.side == "buy" else -bid) * leg.qty * leg.asset.multiplier
        if cost > account.cash:
            self.reject(order, t)
            return
        for leg in order.legs:
            assert leg.qty is not None
            bid, ask = self.prices.quote(leg.asset.symbol, t)
            self.book_fill(account, leg, leg.qty, ask if leg.side == "buy" else bid, t)
        order.filled_qty = order.qty
        order.filled_avg_price = net
        order.status = "filled"
        order.filled_at = t
        order.updated_at = t

    # ------------------------------------------------------------------ prices

    def _crossing(self, order: Order, t: float, immediate: bool) -> Decimal | None:
        """The fill price if the order executes at time t, else None."""
        bid, ask = self.prices.quote(order.asset.symbol, t)
        buy = order.side == "buy"
        touch = ask if buy else bid
        if order.type == "trailing_stop":
            trade = self.prices.price(order.asset.symbol, t)
            if order.hwm is None:
                order.hwm = trade
            order.hwm = max(order.hwm, trade) if not buy else min(order.hwm, trade)
            if order.trail_price is not None:
                offset = order.trail_price
            else:
                assert order.trail_percent is not None
                offset = order.hwm * order.trail_percent / 100
            order.stop_price = (order.hwm + offset if buy else order.hwm - offset).quantize(CENT)
            hit = trade >= order.stop_price if buy else trade <= order.stop_price
            return touch if hit else None
        if order.type in ("stop", "stop_limit") and not order.triggered:
            trade = self.prices.price(order.asset.symbol, t)
            assert order.stop_price is not None
            if not (trade >= order.stop_price if buy else trade <= order.stop_price):
                return None
            order.triggered = True
            if order.type == "stop":
                return touch
        if order.type == "market" or (order.type == "stop" and order.triggered):
            return touch
        limit = order.limit_price
        assert limit is not None
        if buy and touch <= limit:
            # A resting order fills at its limit; one marketable on arrival gets the better touch.
            return touch if immediate else limit
        if not buy and touch >= limit:
            return touch if immediate else limit
        return None

    # ------------------------------------------------------------------ fills

    def fill(
        self, account: Account, order: Order, price: Decimal, t: float, cap: Decimal | None = None
    ) -> None:
        if order.notional is not None:
            qty = (order.notional / price).quantize(QTY_STEP, rounding=ROUND_DOWN)
        else:
            qty = order.remaining_qty()
            if cap is not None:
                qty = min(qty, cap)
        symbol = order.asset.symbol
        if order.side == "sell" and not order.opens_short:
            held = account.positions.get(symbol)
            if qty > (held.qty if held else ZERO):
                self.reject(order, t)
                return
        cost = (qty * price * order.asset.multiplier).quantize(CENT, rounding=ROUND_HALF_UP)
        if order.side == "buy" and cost > account.cash:
            # A cash account: a stop that triggers above what was reserved, or a market order
            # that waited for the open, is rejected rather than overdrawing cash.
            self.reject(order, t)
            return
        self.book_fill(account, order, qty, price, t)
        self.after_fill(order, t)

    def book_fill(self, account: Account, order: Order, qty: Decimal, price: Decimal, t: float) -> None:
        """Move cash and the position by one execution and record it on the order and the account."""
        symbol = order.asset.symbol
        cost = (qty * price * order.asset.multiplier).quantize(CENT, rounding=ROUND_HALF_UP)
        position = account.positions.setdefault(symbol, Position(order.asset))
        signed = qty if order.side == "buy" else -qty
        cash_delta = -cost if order.side == "buy" else cost
        account.cash += cash_delta
        if position.qty == 0 or (position.qty > 0) == (signed > 0):
            position.cost_basis += cost if signed > 0 else -cost  # a short's basis is negative, as Alpaca's
        else:
            # Reducing a position keeps the average entry of what remains.
            avg = position.cost_basis / position.qty
            position.cost_basis = (position.qty + signed) * avg
        position.qty += signed
        if position.qty == 0:
            del account.positions[symbol]
        previous = order.filled_qty
        order.filled_qty = previous + qty
        order.filled_avg_price = (
            price
            if order.filled_avg_price is None
            else ((order.filled_avg_price * previous + price * qty) / order.filled_qty).quantize(CENT)
        )
        if order.notional is not None:
            order.qty = None
        complete = order.notional is not None or order.filled_qty >= (order.qty or ZERO)
        order.status = "filled" if complete else "partially_filled"
        order.filled_at = t
        order.updated_at = t
        # Kept in time order: a sync pass matches order by order, not instant by instant.
        bisect.insort(
            account.fills,
            Fill(
                id=fill_id(t),
                order=order,
                t=t,
                qty=qty,
                price=price,
                cash_delta=cash_delta,
                leaves_qty=order.remaining_qty() if not complete else ZERO,
                cum_qty=order.filled_qty,
                order_status=order.status,
            ),
            key=lambda fill: fill.t,
        )

    def _partner_stop_reached(self, order: Order, times: list[float]) -> float | None:
        """When (among ``times``) the held stop-loss paired with ``order`` first reaches its stop."""
        if order.parent is None:
            partners = order.legs if order.order_class == "oco" else []
        else:
            partners = order.parent.legs if order.parent.order_class == "bracket" else []
        for partner in partners:
            if partner is order or not partner.watching_stop:
                continue
            assert partner.stop_price is not None
            buy = partner.side == "buy"
            for t in times:
                if not partner.asset.is_crypto and not self.clock.is_open(t):
                    continue
                trade = self.prices.price(partner.asset.symbol, t)
                if trade >= partner.stop_price if buy else trade <= partner.stop_price:
                    return t
        return None

    def _trigger_stop_loss(self, stop_loss: Order, t: float) -> None:
        """A held stop-loss reached its stop: it goes to work and its take-profit partner is
        ``replaced`` by it, as Alpaca reports the pair (alpaca-py#198)."""
        stop_loss.status = "new"
        stop_loss.updated_at = t
        parent = stop_loss.parent
        assert parent is not None
        partners = [parent] if parent.order_class == "oco" else parent.legs
        for partner in partners:
            if partner is not stop_loss and partner.is_open:
                if partner.filled_qty and stop_loss.qty is not None:
                    stop_loss.qty -= partner.filled_qty  # it takes over what is left to sell
                partner.status = "replaced"
                partner.replaced_at = t
                partner.replaced_by = stop_loss.id
                partner.updated_at = t

    def after_fill(self, order: Order, t: float) -> None:
        """Brackets and OTOs arm their exits; a filled exit cancels its sibling.

        A bracket's take-profit goes to work ("new") while its stop-loss stays "held", watched
        for its stop (the pair shares one quantity); an OTO's single exit goes to work."""
        if order.status != "filled":
            return
        for leg in order.legs:
            leg.last_eval = max(leg.last_eval, t)
            if leg.status == "held" and not (order.order_class == "bracket" and leg.stop_price is not None):
                leg.status = "new"
                leg.updated_at = t
        if order.order_class == "oco" and order.parent is None:
            for leg in order.legs:
                self.close(leg, "canceled", t)
        if order.parent is not None and order.parent.order_class != "mleg":
            siblings = [order.parent] if order.parent.order_class == "oco" else order.parent.legs
            for sibling in siblings:
                if sibling is not order and sibling.is_open:
                    self.close(sibling, "canceled", t)

    def reject(self, order: Order, t: float) -> None:
        order.status = "rejected"
        order.failed_at = t
        order.updated_at = t
        for leg in order.legs:
            if leg.is_open:
                self.close(leg, "rejected" if order.order_class == "mleg" else "canceled", t)

    def close(self, order: Order, status: str, t: float) -> None:
        order.status = status
        order.updated_at = t
        if status == "canceled":
            order.canceled_at = t
        elif status == "expired":
            order.expired_at = t
        for leg in order.legs:
            if leg.is_open:
                self.close(leg, status if status != "replaced" else "canceled", t)
