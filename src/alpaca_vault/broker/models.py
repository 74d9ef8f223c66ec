"""Pydantic models for what we send to Alpaca and what it answers.

Response models are lenient (``extra="allow"``: Alpaca adds fields over time,
and a new field must never break a call); request models are strict
(``extra="forbid"``) and check argument combinations before anything is sent,
with messages that say what to change. Money and quantities are ``Decimal``
(serialised as strings in JSON mode), so no float rounding touches an order.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    FieldSerializationInfo,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)

OrderSide = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
TimeInForce = Literal["day", "gtc", "ioc", "fok", "opg", "cls"]
OrderClass = Literal["simple", "bracket", "oco", "oto"]
OrderStatusFilter = Literal["open", "closed", "all"]
SortDirection = Literal["asc", "desc"]
StockFeed = Literal["iex", "sip", "delayed_sip", "otc", "boats", "overnight"]

# Symbols Alpaca trades: stocks (AAPL, BRK.B), crypto pairs (BTC/USD). The first
# character must be alphanumeric so "." and ".." can never become path segments.
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9.\-/]{0,31}$")


def normalize_symbol(value: str) -> str:
    """Upper-case and check a symbol; raises ValueError with what a symbol looks like."""
    symbol = value.strip().upper()
    if not SYMBOL_PATTERN.match(symbol):
        raise ValueError(
            f"{value!r} is not a valid symbol: use a ticker like 'AAPL' or 'BRK.B', "
            "or a crypto pair like 'BTC/USD'."
        )
    return symbol


def is_crypto_symbol(symbol: str) -> bool:
    """Crypto pairs are written BASE/QUOTE (BTC/USD); stock tickers never contain a slash."""
    return "/" in symbol


def plain_decimals(value: Any) -> Any:
    """Decimals as plain digits ("0.0000001", "10"), never exponent form ("1E-7", "1E+1"), at any depth."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list):
        return [plain_decimals(item) for item in value]
    if isinstance(value, dict):
        return {key: plain_decimals(item) for key, item in value.items()}
    return value


class _PlainDecimalJson(BaseModel):
    """Serialises every Decimal field in JSON mode as plain digits: Alpaca's wire form (requests we send)."""

    @field_serializer("*", mode="wrap", when_used="json")
    def _plain_decimals(
        self, value: Any, handler: SerializerFunctionWrapHandler, info: FieldSerializationInfo
    ) -> Any:
        if _decimals_only(value):
            return plain_decimals(value)
        return handler(value)


def _decimals_only(value: Any) -> bool:
    """A Decimal, or lists/dicts holding nothing but Decimals and None (portfolio history's series)."""
    if isinstance(value, Decimal):
        return True
    if isinstance(value, list):
        return bool(value) and all(v is None or _decimals_only(v) for v in value)
    if isinstance(value, dict):
        return bool(value) and all(v is None or _decimals_only(v) for v in value.values())
    return False


# Money and quantities in results: Decimal in Python, plain-digit strings on the wire, and said so in
# the output schema (the SDK derives it in validation mode, which would offer "number or string").
# The serializer sits on the type, not on every field: the other fields stay in pydantic's Rust core,
# which makes dumping an account about three times faster (it runs on every tool result).
Money = Annotated[
    Decimal,
    PlainSerializer(plain_decimals, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "description": "A decimal number as a string."}),
]


class AlpacaModel(BaseModel):
    """Base for everything Alpaca answers: tolerant of new fields. Decimal fields are typed ``Money``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --------------------------------------------------------------------------- trading


class Account(AlpacaModel):
    id: str
    account_number: str
    status: str
    crypto_status: str | None = None
    currency: str | None = None
    cash: Money | None = None
    buying_power: Money | None = None
    regt_buying_power: Money | None = None
    daytrading_buying_power: Money | None = None
    non_marginable_buying_power: Money | None = None
    options_buying_power: Money | None = None
    portfolio_value: Money | None = None
    equity: Money | None = None
    last_equity: Money | None = None
    long_market_value: Money | None = None
    short_market_value: Money | None = None
    initial_margin: Money | None = None
    maintenance_margin: Money | None = None
    last_maintenance_margin: Money | None = None
    sma: Money | None = None
    multiplier: Money | None = None
    accrued_fees: Money | None = None
    pending_transfer_in: Money | None = None
    pending_transfer_out: Money | None = None
    pattern_day_trader: bool | None = None
    daytrade_count: int | None = None
    trading_blocked: bool | None = None
    transfers_blocked: bool | None = None
    account_blocked: bool | None = None
    trade_suspended_by_user: bool | None = None
    shorting_enabled: bool | None = None
    options_approved_level: int | None = None
    options_trading_level: int | None = None
    created_at: dt.datetime | None = None


class Position(AlpacaModel):
    asset_id: str | None = None
    symbol: str
    exchange: str | None = None
    asset_class: str | None = None
    asset_marginable: bool | None = None
    side: str | None = None
    qty: Money
    qty_available: Money | None = None
    avg_entry_price: Money | None = None
    market_value: Money | None = None
    cost_basis: Money | None = None
    unrealized_pl: Money | None = None
    unrealized_plpc: Money | None = None
    unrealized_intraday_pl: Money | None = None
    unrealized_intraday_plpc: Money | None = None
    current_price: Money | None = None
    lastday_price: Money | None = None
    change_today: Money | None = None


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


class Clock(AlpacaModel):
    timestamp: dt.datetime
    is_open: bool
    next_open: dt.datetime
    next_close: dt.datetime


class CalendarDay(AlpacaModel):
    date: dt.date
    open: str = Field(description="Regular session open, exchange time (America/New_York), HH:MM.")
    close: str = Field(description="Regular session close, exchange time (America/New_York), HH:MM.")
    session_open: str | None = None
    session_close: str | None = None
    settlement_date: dt.date | None = None


class Asset(AlpacaModel):
    id: str
    symbol: str
    asset_class: str | None = Field(default=None, validation_alias=AliasChoices("asset_class", "class"))
    exchange: str | None = None
    name: str | None = None
    status: str | None = None
    tradable: bool | None = None
    marginable: bool | None = None
    shortable: bool | None = None
    easy_to_borrow: bool | None = None
    fractionable: bool | None = None
    min_order_size: Money | None = None
    min_trade_increment: Money | None = None
    price_increment: Money | None = None
    maintenance_margin_requirement: Money | None = None
    attributes: list[str] | None = None


class PortfolioHistory(AlpacaModel):
    timestamp: list[int]
    equity: list[Money | None]
    profit_loss: list[Money | None]
    profit_loss_pct: list[Money | None]
    base_value: Money | None = None
    base_value_asof: dt.date | None = None
    timeframe: str
    cashflow: dict[str, list[Money | None]] | None = None


class Activity(AlpacaModel):
    """A trade (FILL) or non-trade activity (dividend, fee, transfer...); fields depend on the type."""

    id: str
    activity_type: str
    # trade activities
    transaction_time: dt.datetime | None = None
    type: str | None = None
    price: Money | None = None
    qty: Money | None = None
    side: str | None = None
    symbol: str | None = None
    leaves_qty: Money | None = None
    cum_qty: Money | None = None
    order_id: str | None = None
    order_status: str | None = None
    # non-trade activities
    date: dt.date | None = None
    net_amount: Money | None = None
    description: str | None = None
    status: str | None = None
    per_share_amount: Money | None = None


# --------------------------------------------------------------------------- market data


class Quote(AlpacaModel):
    symbol: str | None = None
    timestamp: dt.datetime | None = Field(default=None, validation_alias=AliasChoices("timestamp", "t"))
    ask_price: Money | None = Field(default=None, validation_alias=AliasChoices("ask_price", "ap"))
    ask_size: Money | None = Field(default=None, validation_alias=AliasChoices("ask_size", "as"))
    ask_exchange: str | None = Field(default=None, validation_alias=AliasChoices("ask_exchange", "ax"))
    bid_price: Money | None = Field(default=None, validation_alias=AliasChoices("bid_price", "bp"))
    bid_size: Money | None = Field(default=None, validation_alias=AliasChoices("bid_size", "bs"))
    bid_exchange: str | None = Field(default=None, validation_alias=AliasChoices("bid_exchange", "bx"))
    conditions: list[str] | None = Field(default=None, validation_alias=AliasChoices("conditions", "c"))
    tape: str | None = Field(default=None, validation_alias=AliasChoices("tape", "z"))


class Trade(AlpacaModel):
    symbol: str | None = None
    timestamp: dt.datetime | None = Field(default=None, validation_alias=AliasChoices("timestamp", "t"))
    price: Money | None = Field(default=None, validation_alias=AliasChoices("price", "p"))
    size: Money | None = Field(default=None, validation_alias=AliasChoices("size", "s"))
    exchange: str | None = Field(default=None, validation_alias=AliasChoices("exchange", "x"))
    id: int | str | None = Field(default=None, validation_alias=AliasChoices("id", "i"))
    conditions: list[str] | None = Field(default=None, validation_alias=AliasChoices("conditions", "c"))
    tape: str | None = Field(default=None, validation_alias=AliasChoices("tape", "z"))
    taker_side: str | None = Field(default=None, validation_alias=AliasChoices("taker_side", "tks"))


class Bar(AlpacaModel):
    timestamp: dt.datetime = Field(validation_alias=AliasChoices("timestamp", "t"))
    open: Money = Field(validation_alias=AliasChoices("open", "o"))
    high: Money = Field(validation_alias=AliasChoices("high", "h"))
    low: Money = Field(validation_alias=AliasChoices("low", "l"))
    close: Money = Field(validation_alias=AliasChoices("close", "c"))
    volume: Money | None = Field(default=None, validation_alias=AliasChoices("volume", "v"))
    trade_count: int | None = Field(default=None, validation_alias=AliasChoices("trade_count", "n"))
    vwap: Money | None = Field(default=None, validation_alias=AliasChoices("vwap", "vw"))


class Snapshot(AlpacaModel):
    symbol: str | None = None
    latest_trade: Trade | None = Field(
        default=None, validation_alias=AliasChoices("latest_trade", "latestTrade")
    )
    latest_quote: Quote | None = Field(
        default=None, validation_alias=AliasChoices("latest_quote", "latestQuote")
    )
    minute_bar: Bar | None = Field(default=None, validation_alias=AliasChoices("minute_bar", "minuteBar"))
    daily_bar: Bar | None = Field(default=None, validation_alias=AliasChoices("daily_bar", "dailyBar"))
    previous_daily_bar: Bar | None = Field(
        default=None, validation_alias=AliasChoices("previous_daily_bar", "prevDailyBar")
    )


class BarsPage(AlpacaModel):
    """Bars per symbol, and the token for the next page when there is more."""

    bars: dict[str, list[Bar]]
    next_page_token: str | None = None


# --------------------------------------------------------------------------- requests


class _Request(_PlainDecimalJson):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TakeProfit(_Request):
    limit_price: Decimal = Field(gt=0, description="Limit price of the take-profit leg.")


class StopLoss(_Request):
    stop_price: Decimal = Field(gt=0, description="Stop (trigger) price of the stop-loss leg.")
    limit_price: Decimal | None = Field(
        default=None, gt=0, description="Makes the stop-loss leg a stop-limit order at this price."
    )


class OrderRequest(_Request):
    """An order to submit. Every argument combination is checked here, before Alpaca sees it."""

    symbol: str = Field(description="Ticker (AAPL, BRK.B) or crypto pair (BTC/USD).")
    side: OrderSide
    type: OrderType = "market"
    time_in_force: TimeInForce = "day"
    qty: Decimal | None = Field(default=None, gt=0, description="Shares (or coins); give qty or notional.")
    notional: Decimal | None = Field(
        default=None,
        gt=0,
        description="Dollar amount to trade (market orders, day only); give qty or notional.",
    )
    limit_price: Decimal | None = Field(default=None, gt=0)
    stop_price: Decimal | None = Field(default=None, gt=0)
    trail_price: Decimal | None = Field(default=None, gt=0)
    trail_percent: Decimal | None = Field(default=None, gt=0, lt=100)
    extended_hours: bool = False
    client_order_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Your unique id for this order; generated when omitted. "
        "Reusing one for the same order never makes a second; for a different order it is refused.",
    )
    order_class: OrderClass = "simple"
    take_profit: TakeProfit | None = None
    stop_loss: StopLoss | None = None

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        return normalize_symbol(value)

    @model_validator(mode="after")
    def _combinations(self) -> Self:
        kind = self.type
        if (self.qty is None) == (self.notional is None):
            raise ValueError(
                "give exactly one of qty (shares) or notional (dollars), not both and not neither."
            )
        # Dollar amounts: market orders only; day for stocks, gtc/ioc for crypto (checked below).
        notional_tif = ("gtc", "ioc") if is_crypto_symbol(self.symbol) else ("day",)
        if self.notional is not None and (kind != "market" or self.time_in_force not in notional_tif):
            raise ValueError(
                f"notional (dollar amount) orders must be type='market' with time_in_force "
                f"{' or '.join(repr(t) for t in notional_tif)}; use qty for other order types."
            )
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
        if self.time_in_force in ("opg", "cls") and kind not in ("market", "limit"):
            raise ValueError(f"time_in_force='{self.time_in_force}' works only with market or limit orders.")
        if self.extended_hours and not (kind == "limit" and self.time_in_force in ("day", "gtc")):
            raise ValueError(
                "extended_hours=true needs type='limit' with time_in_force 'day' or 'gtc'; "
                "drop extended_hours or make it a limit order."
            )
        if is_crypto_symbol(self.symbol) and self.time_in_force not in ("gtc", "ioc"):
            raise ValueError(f"crypto orders ({self.symbol}) need time_in_force 'gtc' or 'ioc'.")
        self._check_order_class()
        return self

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
        return body


class ReplaceOrderRequest(_Request):
    """Changes to an open order (PATCH /v2/orders/{id}); give at least one."""

    qty: Decimal | None = Field(default=None, gt=0)
    time_in_force: TimeInForce | None = None
    limit_price: Decimal | None = Field(default=None, gt=0)
    stop_price: Decimal | None = Field(default=None, gt=0)
    trail: Decimal | None = Field(default=None, gt=0, description="New trail_price or trail_percent value.")
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
