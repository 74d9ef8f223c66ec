"""Orders: what Alpaca answers about them, and the requests that place, replace or close them.

``OrderRequest`` knows each asset class's rules (stocks, crypto pairs, option contracts by OCC
symbol, and multi-leg option orders) and refuses a wrong combination before anything is sent.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from .base import AlpacaModel, Money, Notional, Percentage, Price, Quantity, RequestModel, TrailPercent
from .symbols import asset_kind, is_option_symbol, normalize_symbol

OrderSide = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
TimeInForce = Literal["day", "gtc", "ioc", "fok", "opg", "cls"]
OrderClass = Literal["simple", "bracket", "oco", "oto", "mleg"]
OrderStatusFilter = Literal["open", "closed", "all"]
PositionIntent = Literal["buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close"]

MAX_LEGS = 4
#: Largest ratio between the legs of a multi-leg order.
MAX_RATIO_QTY = 100

# --------------------------------------------------------------------------- answers


class Order(AlpacaModel):
    id: str
    client_order_id: str
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    submitted_at: dt.datetime | None = None
    filled_at: dt.datetime | None = None
    expired_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    canceled_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None
    replaced_at: dt.datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    asset_id: str | None = None
    symbol: str | None = None
    asset_class: str | None = None
    notional: Money | None = None
    qty: Money | None = None
    filled_qty: Money | None = None
    filled_avg_price: Money | None = None
    order_class: str | None = None
    order_type: str | None = None
    type: str | None = None
    side: str | None = None
    position_intent: str | None = None
    time_in_force: str | None = None
    limit_price: Money | None = None
    stop_price: Money | None = None
    trail_price: Money | None = None
    trail_percent: Money | None = None
    hwm: Money | None = None
    status: str
    extended_hours: bool | None = None
    legs: list[Order] | None = None

    @field_validator("order_class", mode="before")
    @classmethod
    def _empty_class_is_simple(cls, value: object) -> object:
        # Alpaca answers "" for simple orders.
        return "simple" if value == "" else value


class CancelOrderResult(AlpacaModel):
    """One entry of DELETE /v2/orders' 207 multi-status answer."""

    id: str
    status: int
    code: int | None = None
    message: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _flatten_body(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("body"), dict):
            body = data["body"]
            data = {k: v for k, v in data.items() if k != "body"}
            data.setdefault("code", body.get("code"))
            data.setdefault("message", body.get("message"))
        return data

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class ClosePositionResult(AlpacaModel):
    """One entry of DELETE /v2/positions' 207 multi-status answer: the closing order, or why not."""

    symbol: str
    status: int
    order: Order | None = None
    code: int | None = None
    message: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _split_body(cls, data: Any) -> Any:
        if isinstance(data, dict) and "body" in data:
            body = data["body"]
            data = {k: v for k, v in data.items() if k != "body"}
            if isinstance(body, dict) and "id" in body and "status" in body and "client_order_id" in body:
                data["order"] = body
            elif isinstance(body, dict):
                data.setdefault("code", body.get("code"))
                data.setdefault("message", body.get("message"))
        return data

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


# --------------------------------------------------------------------------- requests

_CLIENT_ORDER_ID = Field(
    default=None,
    min_length=1,
    max_length=128,
    description="Your unique id for this order; generated when omitted. "
    "Reusing one for the same order never makes a second; for a different order it is refused.",
)


class TakeProfit(RequestModel):
    limit_price: Price = Field(description="Limit price of the take-profit leg.")


class StopLoss(RequestModel):
    stop_price: Price = Field(description="Stop (trigger) price of the stop-loss leg.")
    limit_price: Price | None = Field(
        default=None, description="Makes the stop-loss leg a stop-limit order at this price."
    )


class OptionLeg(RequestModel):
    """One leg of a multi-leg (mleg) option order."""

    symbol: str = Field(description="OCC option contract symbol, e.g. AAPL250620C00200000.")
    side: OrderSide
    ratio_qty: int = Field(
        default=1, ge=1, le=MAX_RATIO_QTY, description="Contracts of this leg per unit of the order's qty."
    )
    position_intent: PositionIntent | None = Field(
        default=None, description="Opening or closing this leg; Alpaca infers it when omitted."
    )

    @field_validator("symbol")
    @classmethod
    def _option_symbol(cls, value: str) -> str:
        symbol = normalize_symbol(value)
        if not is_option_symbol(symbol):
            raise ValueError(
                f"a leg of a multi-leg order is an option contract (OCC symbol), not {symbol!r}."
            )
        return symbol

    @model_validator(mode="after")
    def _intent_matches_side(self) -> Self:
        if self.position_intent is not None and not self.position_intent.startswith(self.side):
            raise ValueError(
                f"leg {self.symbol}: position_intent {self.position_intent!r} does not fit side {self.side!r}."
            )
        return self


class OrderRequest(RequestModel):
    """An order to submit. Every argument combination is checked here, before Alpaca sees it.

    Stocks and crypto pairs take ``symbol`` and ``side``; one option contract is an ordinary order
    on its OCC symbol; ``order_class='mleg'`` takes 2-4 option ``legs`` instead of symbol and side.
    """

    symbol: str | None = Field(
        default=None,
        description="Ticker (AAPL, BRK.B), crypto pair (BTC/USD) or OCC option symbol; omit for mleg.",
    )
    side: OrderSide | None = Field(
        default=None, description="buy or sell; omit for mleg (each leg has a side)."
    )
    type: OrderType = "market"
    time_in_force: TimeInForce = "day"
    qty: Quantity | None = Field(
        default=None, description="Shares, coins or contracts (whole for options); give qty or notional."
    )
    notional: Notional | None = Field(
        default=None,
        description="Dollar amount to trade (market orders; stocks day, crypto gtc/ioc); give qty or notional.",
    )
    limit_price: Price | None = None
    stop_price: Price | None = None
    trail_price: Price | None = None
    trail_percent: TrailPercent | None = None
    extended_hours: bool = False
    client_order_id: str | None = _CLIENT_ORDER_ID
    order_class: OrderClass = "simple"
    take_profit: TakeProfit | None = None
    stop_loss: StopLoss | None = None
    position_intent: PositionIntent | None = Field(
        default=None, description="For an option contract: opening or closing a position."
    )
    legs: list[OptionLeg] | None = Field(
        default=None,
        max_length=MAX_LEGS,
        description=f"The legs of an mleg order: 2 to {MAX_LEGS} contracts.",
    )

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str | None) -> str | None:
        return None if value is None else normalize_symbol(value)

    @property
    def asset_kind(self) -> Literal["stock", "crypto", "option", "mleg"]:
        if self.order_class == "mleg":
            return "mleg"
        return asset_kind(self.symbol or "")

    @model_validator(mode="after")
    def _combinations(self) -> Self:
        if self.order_class == "mleg":
            self._check_mleg()
            return self
        if self.symbol is None or self.side is None:
            raise ValueError("give symbol and side (only an order_class='mleg' order goes without them).")
        if self.legs is not None:
            raise ValueError("legs belong to order_class='mleg' orders only.")
        kind = self.type
        if (self.qty is None) == (self.notional is None):
            raise ValueError(
                "give exactly one of qty (shares) or notional (dollars), not both and not neither."
            )
        self._check_prices()
        if self.time_in_force in ("opg", "cls") and kind not in ("market", "limit"):
            raise ValueError(f"time_in_force='{self.time_in_force}' works only with market or limit orders.")
        if self.extended_hours and not (kind == "limit" and self.time_in_force in ("day", "gtc")):
            raise ValueError(
                "extended_hours=true needs type='limit' with time_in_force 'day' or 'gtc'; "
                "drop extended_hours or make it a limit order."
            )
        if self.asset_kind == "crypto":
            self._check_crypto()
        elif self.asset_kind == "option":
            self._check_option()
        else:
            self._check_stock()
        self._check_order_class()
        return self

    def _check_prices(self) -> None:
        kind = self.type
        if kind in ("limit", "stop_limit") and self.limit_price is None:
            raise ValueError(f"a {kind} order needs limit_price.")
        if kind in ("stop", "stop_limit") and self.stop_price is None:
            raise ValueError(f"a {kind} order needs stop_price.")
        if kind in ("market", "stop", "trailing_stop") and self.limit_price is not None:
            raise ValueError(
                f"limit_price does not apply to a {kind} order; use type='limit' or 'stop_limit'."
            )
        if kind in ("market", "limit", "trailing_stop") and self.stop_price is not None:
            raise ValueError(f"stop_price does not apply to a {kind} order; use type='stop' or 'stop_limit'.")
        if kind == "trailing_stop":
            if (self.trail_price is None) == (self.trail_percent is None):
                raise ValueError("a trailing_stop order needs exactly one of trail_price or trail_percent.")
        elif self.trail_price is not None or self.trail_percent is not None:
            raise ValueError("trail_price and trail_percent apply only to type='trailing_stop'.")

    def _check_stock(self) -> None:
        if self.position_intent is not None:
            raise ValueError("position_intent applies to option contracts only.")
        if self.notional is not None and (self.type != "market" or self.time_in_force != "day"):
            raise ValueError(
                "notional (dollar amount) orders must be type='market' with time_in_force 'day'; "
                "use qty for other order types."
            )

    def _check_crypto(self) -> None:
        who = f"crypto orders ({self.symbol})"
        if self.time_in_force not in ("gtc", "ioc"):
            raise ValueError(f"{who} need time_in_force 'gtc' or 'ioc'.")
        if self.type not in ("market", "limit", "stop_limit"):
            raise ValueError(f"{who} are market, limit or stop_limit; not {self.type}.")
        if self.notional is not None and self.type != "market":
            raise ValueError(
                "notional (dollar amount) orders must be type='market' with time_in_force 'gtc' or 'ioc'; "
                "use qty for other order types."
            )
        if self.extended_hours:
            raise ValueError(f"{who} trade around the clock: drop extended_hours.")
        if self.order_class != "simple":
            raise ValueError(f"{who} are simple orders only, not {self.order_class}.")
        if self.position_intent is not None:
            raise ValueError("position_intent applies to option contracts only.")

    def _check_option(self) -> None:
        who = f"option orders ({self.symbol})"
        if self.notional is not None:
            raise ValueError(f"{who} take qty in whole contracts, not notional.")
        if self.qty is not None and self.qty != self.qty.to_integral_value():
            raise ValueError(f"{who} take qty in whole contracts (got {self.qty}).")
        if self.time_in_force != "day":
            raise ValueError(f"{who} need time_in_force 'day'.")
        if self.type not in ("market", "limit", "stop", "stop_limit"):
            raise ValueError(f"{who} are market, limit, stop or stop_limit; not {self.type}.")
        if self.extended_hours:
            raise ValueError(f"{who} trade in regular hours only: drop extended_hours.")
        if self.order_class != "simple":
            raise ValueError(
                f"{who} are simple orders; for a spread use order_class='mleg' with legs, not {self.order_class}."
            )
        intent = self.position_intent
        if intent is not None and self.side is not None and not intent.startswith(self.side):
            raise ValueError(f"position_intent {intent!r} does not fit side {self.side!r}.")

    def _check_mleg(self) -> None:
        if self.symbol is not None or self.side is not None:
            raise ValueError("an mleg order has no symbol or side of its own: each leg has them.")
        if not self.legs or len(self.legs) < 2:
            raise ValueError(
                f"an mleg order needs 2 to {MAX_LEGS} legs; a single contract is an ordinary order on its symbol."
            )
        symbols = [leg.symbol for leg in self.legs]
        if len(set(symbols)) != len(symbols):
            raise ValueError("each leg of an mleg order must be a different contract.")
        if math.gcd(*(leg.ratio_qty for leg in self.legs)) != 1:
            raise ValueError(
                "the legs' ratio_qty must be in lowest terms (e.g. 1:2, not 2:4); scale qty instead."
            )
        if self.qty is None or self.notional is not None:
            raise ValueError("an mleg order takes qty (whole units of the leg ratios), not notional.")
        if self.qty != self.qty.to_integral_value():
            raise ValueError(f"an mleg order's qty is a whole number (got {self.qty}).")
        if self.type not in ("market", "limit"):
            raise ValueError("an mleg order is type 'market' or 'limit'.")
        if (self.type == "limit") != (self.limit_price is not None):
            raise ValueError("an mleg order has limit_price exactly when type='limit'.")
        if self.time_in_force != "day":
            raise ValueError("an mleg order needs time_in_force 'day'.")
        if self.extended_hours:
            raise ValueError("an mleg order trades in regular hours only: drop extended_hours.")
        extras = [
            name
            for name in (
                "stop_price",
                "trail_price",
                "trail_percent",
                "take_profit",
                "stop_loss",
                "position_intent",
            )
            if getattr(self, name) is not None
        ]
        if extras:
            raise ValueError(
                f"{', '.join(extras)} do not apply to an mleg order (give position_intent per leg)."
            )

    def _check_order_class(self) -> None:
        oc = self.order_class
        if oc == "simple":
            if self.take_profit is not None or self.stop_loss is not None:
                raise ValueError(
                    "take_profit and stop_loss need order_class 'bracket' (both), "
                    "'oco' (both) or 'oto' (one)."
                )
            return
        if self.notional is not None:
            raise ValueError(f"a {oc} order needs qty, not notional.")
        if self.extended_hours:
            raise ValueError(f"a {oc} order cannot trade in extended hours; drop extended_hours.")
        if self.time_in_force not in ("day", "gtc"):
            raise ValueError(f"a {oc} order needs time_in_force 'day' or 'gtc'.")
        if oc in ("bracket", "oco") and (self.take_profit is None or self.stop_loss is None):
            raise ValueError(f"a {oc} order needs both take_profit (limit_price) and stop_loss (stop_price).")
        if oc == "oto" and (self.take_profit is None) == (self.stop_loss is None):
            raise ValueError("an oto order needs exactly one of take_profit or stop_loss.")
        if oc == "oco" and self.type != "limit":
            raise ValueError("an oco order must be type='limit' (its take-profit leg).")
        if oc == "bracket" and self.type not in ("market", "limit"):
            raise ValueError("a bracket order's entry must be type 'market' or 'limit'.")
        if self.take_profit is not None and self.stop_loss is not None:
            tp, sl = self.take_profit.limit_price, self.stop_loss.stop_price
            if self.side == "buy" and not tp > sl:
                raise ValueError(
                    f"for a buy {oc}, take_profit.limit_price ({tp}) must be above "
                    f"stop_loss.stop_price ({sl})."
                )
            if self.side == "sell" and not tp < sl:
                raise ValueError(
                    f"for a sell {oc}, take_profit.limit_price ({tp}) must be below "
                    f"stop_loss.stop_price ({sl})."
                )

    def to_alpaca(self, client_order_id: str) -> dict[str, Any]:
        """The JSON body of POST /v2/orders, with decimals as strings (Alpaca's own wire form)."""
        body = self.model_dump(mode="json", exclude_none=True)
        body["client_order_id"] = client_order_id
        if not self.extended_hours:
            body.pop("extended_hours", None)
        if self.legs is not None:
            body["legs"] = [
                {**leg.model_dump(mode="json", exclude_none=True), "ratio_qty": str(leg.ratio_qty)}
                for leg in self.legs
            ]
        return body


class ReplaceOrderRequest(RequestModel):
    """Changes to an open order (PATCH /v2/orders/{id}); give at least one."""

    qty: Quantity | None = None
    time_in_force: TimeInForce | None = None
    limit_price: Price | None = None
    stop_price: Price | None = None
    trail: Price | None = Field(default=None, description="New trail_price or trail_percent value.")
    client_order_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="client_order_id of the replacement order; generated when omitted.",
    )

    @model_validator(mode="after")
    def _something_changes(self) -> Self:
        changes = self.model_dump(exclude_none=True, exclude={"client_order_id"})
        if not changes:
            raise ValueError(
                "nothing to replace: give at least one of qty, time_in_force, limit_price, "
                "stop_price or trail."
            )
        return self

    def to_alpaca(self, client_order_id: str) -> dict[str, Any]:
        body = self.model_dump(mode="json", exclude_none=True)
        body["client_order_id"] = client_order_id
        return body


class ClosePositionRequest(RequestModel):
    """How much of a position to close: all of it (neither), ``qty`` units, or ``percentage`` of it."""

    qty: Quantity | None = None
    percentage: Percentage | None = None

    @model_validator(mode="after")
    def _one_amount(self) -> Self:
        if self.qty is not None and self.percentage is not None:
            raise ValueError("give qty or percentage to close part of a position, not both.")
        return self

    def to_params(self) -> dict[str, str]:
        return {
            k: format(v, "f") for k, v in self.model_dump(exclude_none=True).items() if isinstance(v, Decimal)
        }
