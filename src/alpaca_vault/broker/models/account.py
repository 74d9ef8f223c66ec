"""The account: balances, positions, history, activities, and its configuration."""

from __future__ import annotations

import datetime as dt
from typing import Literal, Self

from pydantic import Field, model_validator

from .base import AlpacaModel, Money, RequestModel


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


# The tools' parameters list the same choices in this order: typing caches `Literal[...] | None` by its
# set of values, so the first order imported would otherwise be the one every schema publishes.
DayTradeCheck = Literal["entry", "exit", "both"]
MarginMultiplier = Literal["1", "2", "4"]


class AccountConfiguration(AlpacaModel):
    """GET/PATCH /v2/account/configurations: the account's own trading switches."""

    dtbp_check: str | None = None
    trade_confirm_email: str | None = None
    suspend_trade: bool | None = None
    no_shorting: bool | None = None
    fractional_trading: bool | None = None
    max_margin_multiplier: str | None = None
    max_options_trading_level: int | None = None
    pdt_check: str | None = None
    ptp_no_exception_entry: bool | None = None


class AccountConfigurationUpdate(RequestModel):
    """The fields Alpaca lets an account owner change; give at least one."""

    dtbp_check: DayTradeCheck | None = Field(
        default=None, description="Day-trading buying power check: on entry, exit, or both."
    )
    trade_confirm_email: Literal["all", "none"] | None = Field(
        default=None, description="Send a confirmation e-mail for every trade ('all') or none."
    )
    suspend_trade: bool | None = Field(default=None, description="Block all new orders on the account.")
    no_shorting: bool | None = Field(default=None, description="Refuse orders that would open a short.")
    fractional_trading: bool | None = Field(default=None, description="Allow fractional share orders.")
    max_margin_multiplier: MarginMultiplier | None = Field(
        default=None, description="Margin: '1' (none), '2' (overnight) or '4' (pattern day trader)."
    )
    max_options_trading_level: Literal[0, 1, 2, 3] | None = Field(
        default=None,
        description="Highest options level to use (0 disables options), up to the approved level.",
    )
    pdt_check: DayTradeCheck | None = Field(
        default=None, description="Pattern-day-trader check: on entry, exit, or both."
    )
    ptp_no_exception_entry: bool | None = Field(
        default=None,
        description="Allow entering publicly traded partnerships without the withholding exception.",
    )

    @model_validator(mode="after")
    def _something_changes(self) -> Self:
        if not self.model_dump(exclude_none=True):
            raise ValueError("nothing to change: give at least one configuration field.")
        return self

    def to_alpaca(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude_none=True)
