"""The end of an option: exercise on request, and at expiry exercise, assignment or expiring worthless.

Each is booked as executions against synthetic orders (never listed as orders), so cash, positions,
activities (OPEXC, OPASN, OPEXP) and portfolio history all follow from the same fills.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time
from decimal import Decimal

from alpaca_vault.simulator.assets import UNIVERSE, Asset
from alpaca_vault.simulator.books import ZERO, Account, Order, Position, money, number
from alpaca_vault.simulator.clock import NEW_YORK, MarketClock
from alpaca_vault.simulator.errors import forbidden, not_found, unprocessable
from alpaca_vault.simulator.matching import MatchingEngine
from alpaca_vault.simulator.prices import PricePath


def _synthetic(asset: Asset, side: str, qty: Decimal, t: float) -> Order:
    return Order(
        id=str(uuid.uuid4()),
        client_order_id=str(uuid.uuid4()),
        asset=asset,
        side=side,
        type="market",
        time_in_force="day",
        qty=qty,
        notional=None,
        limit_price=None,
        stop_price=None,
        trail_price=None,
        trail_percent=None,
        order_class="simple",
        extended_hours=False,
        created_at=t,
        opens_short=True,  # delivery may take a position either way
    )


def _settle(
    engine: MatchingEngine, account: Account, position: Position, activity: str, deliver: bool, t: float
) -> None:
    """Close the option position at zero; if ``deliver``, move 100 shares a contract at the strike."""
    contract = position.asset
    assert contract.underlying is not None and contract.strike is not None
    qty = abs(position.qty)
    closing = _synthetic(contract, "sell" if position.qty > 0 else "buy", qty, t)
    # A long call or a short put buys the shares; a long put or a short call sells them.
    buys_shares = (contract.option_type == "call") == (position.qty > 0)
    engine.book_fill(account, closing, qty, ZERO, t)
    synthetic = [closing]
    if deliver:
        shares = _synthetic(UNIVERSE[contract.underlying], "buy" if buys_shares else "sell", qty * 100, t)
        engine.book_fill(account, shares, qty * 100, contract.strike, t)
        synthetic.append(shares)
    for fill in account.fills:
        if any(fill.order is order for order in synthetic):
            fill.activity_type = activity


def exercise(engine: MatchingEngine, account: Account, contract: Asset, clock: MarketClock) -> None:
    """``POST /v2/positions/{symbol_or_contract_id}/exercise``: every held contract, now."""
    position = account.positions.get(contract.symbol)
    if position is None:
        raise not_found("position does not exist")
    if position.qty <= 0:
        raise forbidden("only long option positions can be exercised")
    assert contract.underlying is not None and contract.strike is not None
    now = clock.now()
    local = datetime.fromtimestamp(now, NEW_YORK)
    if clock.mode == "exchange_hours" and local.time() >= time(16):
        raise unprocessable("exercise requests are not accepted between market close and midnight")
    qty = position.qty
    if contract.option_type == "call":
        cost = contract.strike * 100 * qty
        if cost > account.cash:
            raise forbidden(
                "insufficient buying power", buying_power=money(account.cash), cost_basis=money(cost)
            )
    else:
        shares = account.positions.get(contract.underlying)
        held = shares.qty if shares else ZERO
        if held < qty * 100:
            raise forbidden(
                f"insufficient qty available for order (requested: {number(qty * 100)}, available: {number(held)})",
                symbol=contract.underlying,
            )
    _settle(engine, account, position, "OPEXC", deliver=True, t=now)
    account.do_not_exercise.discard(contract.symbol)


def settle_expirations(engine: MatchingEngine, account: Account, prices: PricePath, now: float) -> None:
    """Options whose expiry (16:00 New York) has passed: in the money by a cent or more are exercised
    (long, unless do-not-exercise was asked) or assigned (short); the rest expire worthless."""
    for position in list(account.positions.values()):
        contract = position.asset
        if not contract.is_option or contract.expiration is None or contract.strike is None:
            continue
        close = datetime.combine(contract.expiration, time(16), NEW_YORK).timestamp()
        if close > now:
            continue
        assert contract.underlying is not None
        spot = prices.price(contract.underlying, close)
        intrinsic = spot - contract.strike if contract.option_type == "call" else contract.strike - spot
        in_the_money = intrinsic >= Decimal("0.01")
        if position.qty > 0 and in_the_money and contract.symbol not in account.do_not_exercise:
            if contract.option_type == "call":
                affordable = contract.strike * 100 * position.qty <= account.cash
            else:
                shares = account.positions.get(contract.underlying)
                affordable = shares is not None and shares.qty >= position.qty * 100
            if affordable:
                _settle(engine, account, position, "OPEXC", deliver=True, t=close)
                continue
        if position.qty < 0 and in_the_money:
            _settle(engine, account, position, "OPASN", deliver=True, t=close)
            continue
        _settle(engine, account, position, "OPEXP", deliver=False, t=close)
        account.do_not_exercise.discard(contract.symbol)
