"""The account: balances and configuration, positions (and closing them), history, activities."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from pydantic import ValidationError

from . import arguments as args
from .errors import InvalidRequestError
from .models import (
    Account,
    AccountConfiguration,
    AccountConfigurationUpdate,
    Activity,
    ClosePositionRequest,
    ClosePositionResult,
    Order,
    PortfolioHistory,
    Position,
    SortDirection,
)
from .transport import AlpacaKeys, AlpacaTransport

_PERIOD = re.compile(r"^[1-9][0-9]{0,3}[DWMA]$")
_HISTORY_TIMEFRAME = ("1Min", "5Min", "15Min", "1H", "1D")


class AccountApi(AlpacaTransport):
    async def get_account(self, keys: AlpacaKeys) -> Account:
        return self._parse(Account, await self._get(keys, self._trading(keys, "/v2/account")))

    async def get_account_configuration(self, keys: AlpacaKeys) -> AccountConfiguration:
        url = self._trading(keys, "/v2/account/configurations")
        return self._parse(AccountConfiguration, await self._get(keys, url))

    async def update_account_configuration(
        self, keys: AlpacaKeys, changes: AccountConfigurationUpdate
    ) -> AccountConfiguration:
        """Change the account's trading switches; the result is the whole configuration after the change."""
        self._check_may_trade(keys, "change the account configuration")
        url = self._trading(keys, "/v2/account/configurations")
        # Setting the same fields to the same values twice has the same effect: safe to retry.
        payload = await self._call(keys, "PATCH", url, body=changes.to_alpaca(), idempotent=True)
        return self._parse(AccountConfiguration, payload)

    async def get_positions(self, keys: AlpacaKeys) -> list[Position]:
        return self._parse_list(Position, await self._get(keys, self._trading(keys, "/v2/positions")))

    async def get_position(self, keys: AlpacaKeys, symbol: str) -> Position:
        url = self._trading(keys, f"/v2/positions/{args.path_symbol(symbol)}")
        return self._parse(Position, await self._get(keys, url))

    async def close_position(
        self,
        keys: AlpacaKeys,
        symbol: str,
        *,
        qty: str | float | Decimal | None = None,
        percentage: str | float | Decimal | None = None,
    ) -> Order:
        """Place the order that closes all or part of a position (qty units, or percentage of it)."""
        self._check_may_trade(keys, "close a position")
        try:
            amount = ClosePositionRequest(qty=qty, percentage=percentage)
        except ValidationError as exc:
            raise InvalidRequestError(_first_reason(exc)) from None
        url = self._trading(keys, f"/v2/positions/{args.path_symbol(symbol)}")
        payload = await self._unrepeatable(
            keys, "DELETE", url, params=amount.to_params(), what=f"closing {symbol.strip().upper()}"
        )
        return self._parse(Order, payload)

    async def close_all_positions(
        self, keys: AlpacaKeys, *, cancel_orders: bool = False
    ) -> list[ClosePositionResult]:
        """Liquidate every position (optionally cancelling open orders first); one result per position."""
        self._check_may_trade(keys, "close all positions")
        params = {"cancel_orders": "true"} if cancel_orders else {}
        payload = await self._unrepeatable(
            keys, "DELETE", self._trading(keys, "/v2/positions"), params=params, what="closing all positions"
        )
        return self._parse_list(ClosePositionResult, payload)

    async def get_portfolio_history(
        self,
        keys: AlpacaKeys,
        *,
        period: str | None = None,
        timeframe: str | None = None,
        start: dt.datetime | dt.date | str | None = None,
        end: dt.datetime | dt.date | str | None = None,
        intraday_reporting: Literal["market_hours", "extended_hours", "continuous"] | None = None,
        pnl_reset: Literal["per_day", "no_reset"] | None = None,
    ) -> PortfolioHistory:
        if period is not None and not _PERIOD.match(period):
            raise InvalidRequestError(
                "period must look like 1D, 7D, 1W, 1M, 3M or 1A (a number and D, W, M or A)."
            )
        if timeframe is not None and timeframe not in _HISTORY_TIMEFRAME:
            raise InvalidRequestError(f"timeframe must be one of {', '.join(_HISTORY_TIMEFRAME)}.")
        params = {
            "period": period,
            "timeframe": timeframe,
            "start": args.time_param(start, "start"),
            "end": args.time_param(end, "end"),
            "intraday_reporting": intraday_reporting,
            "pnl_reset": pnl_reset,
        }
        url = self._trading(keys, "/v2/account/portfolio/history")
        return self._parse(PortfolioHistory, await self._get(keys, url, params))

    async def get_activities(
        self,
        keys: AlpacaKeys,
        *,
        activity_types: Sequence[str] | None = None,
        date: dt.date | str | None = None,
        after: dt.datetime | dt.date | str | None = None,
        until: dt.datetime | dt.date | str | None = None,
        direction: SortDirection | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> list[Activity]:
        args.limit_param(page_size, 100, "page_size")
        types = [t.strip().upper() for t in activity_types or [] if t.strip()]
        if len(types) > 50 or any(not (t.replace("_", "").isalnum() and len(t) <= 16) for t in types):
            raise InvalidRequestError("activity_types are words like FILL, DIV, FEE, CSD, TRANS.")
        params = {
            "activity_types": ",".join(types) or None,
            "date": args.time_param(date, "date"),
            "after": args.time_param(after, "after"),
            "until": args.time_param(until, "until"),
            "direction": direction,
            "page_size": page_size,
            "page_token": args.page_token(page_token),
        }
        url = self._trading(keys, "/v2/account/activities")
        return self._parse_list(Activity, await self._get(keys, url, params))


def _first_reason(exc: ValidationError) -> str:
    error = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in error["loc"])
    reason = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {reason}" if where else reason
