"""Account tools: the account, its positions, portfolio history and activities (all read-only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from alpaca_vault.broker.models import (
    Account,
    AccountConfiguration,
    AccountConfigurationUpdate,
    Activity,
    PortfolioHistory,
    Position,
)
from alpaca_vault.tools import voice
from alpaca_vault.tools.gate import alpaca_call
from alpaca_vault.tools.params import CredentialRef, Symbol, symbol_of
from alpaca_vault.tools.results import Bounded, Record, counted, max_result_bytes, money, respond


class AccountResult(BaseModel):
    credential: str = Field(description="The credential used.")
    account: Account


class PositionsResult(Bounded):
    credential: str
    positions: list[Position]


class PositionResult(BaseModel):
    credential: str
    position: Position


class PortfolioHistoryResult(Bounded):
    credential: str
    history: PortfolioHistory


class ActivitiesResult(Bounded):
    credential: str
    activities: list[Activity]
    next_page_token: str | None = Field(
        default=None, description="Pass as page_token for the next page; null when this page was the last."
    )


async def alpaca_get_account(
    ctx: Context[Any, Any], credential: CredentialRef = None
) -> Annotated[CallToolResult, AccountResult]:
    """Get the Alpaca account: status, cash, buying power, equity, portfolio value, day-trade flags."""
    async with alpaca_call(ctx, credential) as call:
        account = await call.send(call.broker.get_account)
    summary = (
        f"Account {voice.ident(account.account_number)} ({call.resolved.environment}, "
        f"{voice.word(account.status, voice.ACCOUNT_STATUSES)}) "
        f"via '{call.credential_name}': "
        f"equity {money(account.equity)}, cash {money(account.cash)}, "
        f"buying power {money(account.buying_power)}."
    )
    return respond(AccountResult(credential=call.credential_name, account=account), summary)


async def alpaca_get_positions(
    ctx: Context[Any, Any], credential: CredentialRef = None
) -> Annotated[CallToolResult, PositionsResult]:
    """List open positions with quantity, average entry price, market value and unrealized P/L."""
    async with alpaca_call(ctx, credential) as call:
        positions = await call.send(call.broker.get_positions)
    if positions:
        lines = "; ".join(
            f"{voice.symbol(p.symbol)} {p.qty} @ avg {p.avg_entry_price} (P/L {money(p.unrealized_pl)})"
            for p in positions[:50]
        )
        more = f"; and {len(positions) - 50} more (see data)" if len(positions) > 50 else ""
        summary = f"{counted(len(positions), 'open position')} in '{call.credential_name}': {lines}{more}."
    else:
        summary = f"No open positions in '{call.credential_name}'."
    return respond(
        PositionsResult(credential=call.credential_name, positions=positions), summary, rest=_other_positions
    )


def _other_positions(kept: list[Record], omitted: list[Record]) -> str:
    symbols = [voice.symbol(record.get("symbol")) for _, record in omitted[:40]]
    return (
        "alpaca_get_position(symbol=...) for each of "
        + ", ".join(symbols)
        + (", ..." if len(omitted) > 40 else "")
    )


async def alpaca_get_position(
    ctx: Context[Any, Any], symbol: Symbol, credential: CredentialRef = None
) -> Annotated[CallToolResult, PositionResult]:
    """Get the open position in one symbol."""
    symbol = symbol_of(symbol)
    async with alpaca_call(ctx, credential) as call:
        position = await call.send(call.broker.get_position, symbol)
    summary = (
        f"'{call.credential_name}' holds {position.qty} {voice.symbol(position.symbol)} "
        f"at avg {position.avg_entry_price}, "
        f"market value {money(position.market_value)}, unrealized P/L {money(position.unrealized_pl)}."
    )
    return respond(PositionResult(credential=call.credential_name, position=position), summary)


async def alpaca_get_portfolio_history(
    ctx: Context[Any, Any],
    period: Annotated[
        str | None, Field(max_length=8, description="Length like '1D', '1W', '1M', '3M', '1A' (default 1M).")
    ] = None,
    timeframe: Annotated[
        Literal["1Min", "5Min", "15Min", "1H", "1D"] | None, Field(description="Resolution of each point.")
    ] = None,
    start: Annotated[dt.datetime | None, Field(description="Start time.")] = None,
    end: Annotated[dt.datetime | None, Field(description="End time.")] = None,
    intraday_reporting: Annotated[
        Literal["market_hours", "extended_hours", "continuous"] | None,
        Field(description="Intraday timeframes: which hours to include."),
    ] = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, PortfolioHistoryResult]:
    """Get the account's equity and profit/loss over time."""
    async with alpaca_call(ctx, credential) as call:
        history = await call.send(
            call.broker.get_portfolio_history,
            period=period,
            timeframe=timeframe,
            start=start,
            end=end,
            intraday_reporting=intraday_reporting,
        )
    points = len(history.timestamp)
    last_equity = next((e for e in reversed(history.equity) if e is not None), None)
    summary = (
        f"Portfolio history of '{call.credential_name}': {counted(points, 'point')} at "
        f"{voice.word(history.timeframe, voice.TIMEFRAMES)}, "
    )
    summary += f"latest equity {money(last_equity)}."
    history, more = _latest_points_that_fit(history)
    if more:
        summary += f" Only the latest {len(history.timestamp)} points fit in this answer; more: {more}."
    return respond(
        PortfolioHistoryResult(credential=call.credential_name, history=history, more=more), summary
    )


_PARALLEL = ("timestamp", "equity", "profit_loss", "profit_loss_pct")


def _latest_points_that_fit(history: PortfolioHistory) -> tuple[PortfolioHistory, str | None]:
    """The latest points whose parallel arrays fit half the size bound (the rest is summary and framing)."""
    points = len(history.timestamp)
    size = len(history.model_dump_json(by_alias=True))
    room = max_result_bytes() // 2
    if size <= room or points < 2:
        return history, None
    keep = max(1, points * room // size - 1)
    update: dict[str, Any] = {name: getattr(history, name)[-keep:] for name in _PARALLEL}
    if history.cashflow:
        update["cashflow"] = {kind: values[-keep:] for kind, values in history.cashflow.items()}
    trimmed = history.model_copy(update=update)
    first = dt.datetime.fromtimestamp(trimmed.timestamp[0], dt.UTC).isoformat()
    return trimmed, (
        f"{points - keep} earlier of {points} points left out to keep this answer within the size limit; to get "
        f"them: call again with a larger timeframe (1D, 1H, 15Min) or end='{first}' for the points before these"
    )


async def alpaca_get_activities(
    ctx: Context[Any, Any],
    activity_types: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=24)]] | None,
        Field(max_length=40, description="Filter, e.g. ['FILL'], ['DIV'], ['FILL', 'TRANS']."),
    ] = None,
    after: Annotated[dt.datetime | None, Field(description="Only activities after this time.")] = None,
    until: Annotated[dt.datetime | None, Field(description="Only activities until this time.")] = None,
    direction: Annotated[Literal["asc", "desc"], Field(description="Sort order by time.")] = "desc",
    page_size: Annotated[int, Field(ge=1, le=100, description="At most this many per page (1-100).")] = 50,
    page_token: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=128,
            description="next_page_token of the previous call, other arguments unchanged.",
        ),
    ] = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, ActivitiesResult]:
    """List account activities: fills, dividends, transfers, fees; newest first by default, paged."""
    async with alpaca_call(ctx, credential) as call:
        activities = await call.send(
            call.broker.get_activities,
            activity_types=[a.upper() for a in activity_types] if activity_types else None,
            after=after,
            until=until,
            direction=direction,
            page_size=page_size,
            page_token=page_token,
        )
    # Alpaca pages activities by id: a full page may have a successor, which starts after its last id.
    next_page_token = activities[-1].id if len(activities) == page_size else None
    summary = (
        f"{len(activities)} activit{'y' if len(activities) == 1 else 'ies'} in '{call.credential_name}'."
    )
    if next_page_token:
        summary += " More may follow: pass next_page_token (in the data) as page_token."
    result = ActivitiesResult(
        credential=call.credential_name, activities=activities, next_page_token=next_page_token
    )
    return respond(result, summary, records="activities", rest=_later_activities)


def _later_activities(kept: list[Record], omitted: list[Record]) -> str:
    if not kept:
        return "call again with a smaller page_size"
    return f"call again with page_token='{voice.ident(kept[-1][1]['id'])}' and the same other arguments"


# --- issue #15: the account's configuration --------------------------------------------------


class AccountConfigResult(BaseModel):
    credential: str = Field(description="The credential used.")
    environment: Literal["paper", "live"]
    config: AccountConfiguration


def _describe_config(config: AccountConfiguration) -> str:
    """The settings we know, each as a plain value (Alpaca's other fields stay in the data block)."""
    fields = config.model_dump(exclude_none=True)
    said = [
        f"{key}={value if isinstance(value, bool | int) else voice.word(value, voice.CONFIG_VALUES)}"
        for key, value in fields.items()
        if key in AccountConfiguration.model_fields
    ]
    return ", ".join(said) or "no settings reported"


async def alpaca_get_account_config(
    ctx: Context[Any, Any], credential: CredentialRef = None
) -> Annotated[CallToolResult, AccountConfigResult]:
    """Get the account's trading settings: day-trade and PDT checks, confirmation e-mails, suspended trading,
    no shorting, fractional trading, margin multiplier, options level."""
    async with alpaca_call(ctx, credential) as call:
        config = await call.send(call.broker.get_account_configuration)
    environment = call.resolved.environment
    summary = f"Configuration of '{call.credential_name}' ({environment}): {_describe_config(config)}."
    return respond(
        AccountConfigResult(credential=call.credential_name, environment=environment, config=config), summary
    )


async def alpaca_update_account_config(
    ctx: Context[Any, Any],
    dtbp_check: Annotated[
        Literal["entry", "exit", "both"] | None, Field(description="Day-trading buying power check.")
    ] = None,
    trade_confirm_email: Annotated[
        Literal["all", "none"] | None, Field(description="E-mail a confirmation for every trade, or none.")
    ] = None,
    suspend_trade: Annotated[bool | None, Field(description="Block all new orders.")] = None,
    no_shorting: Annotated[bool | None, Field(description="Refuse orders that would open a short.")] = None,
    fractional_trading: Annotated[bool | None, Field(description="Allow fractional orders.")] = None,
    max_margin_multiplier: Annotated[
        Literal["1", "2", "4"] | None, Field(description="1 (no margin), 2 (overnight) or 4 (day trader).")
    ] = None,
    pdt_check: Annotated[
        Literal["entry", "exit", "both"] | None, Field(description="Pattern-day-trader check.")
    ] = None,
    max_options_trading_level: Annotated[
        Literal[0, 1, 2, 3] | None, Field(description="Highest options level to use (0: no options).")
    ] = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, AccountConfigResult]:
    """Change the account's trading settings (only the fields given); returns the whole configuration.

    Live credentials are refused unless the server allows live trading."""
    changes = AccountConfigurationUpdate(
        dtbp_check=dtbp_check, trade_confirm_email=trade_confirm_email, suspend_trade=suspend_trade,
        no_shorting=no_shorting, fractional_trading=fractional_trading,
        max_margin_multiplier=max_margin_multiplier, pdt_check=pdt_check,
        max_options_trading_level=max_options_trading_level,
    )  # fmt: skip
    async with alpaca_call(ctx, credential) as call:
        config = await call.send(call.broker.update_account_configuration, changes)
    environment = call.resolved.environment
    changed = ", ".join(changes.to_alpaca())
    summary = (
        f"Updated {changed} of '{call.credential_name}' ({environment}); now: {_describe_config(config)}."
    )
    return respond(
        AccountConfigResult(credential=call.credential_name, environment=environment, config=config), summary
    )
