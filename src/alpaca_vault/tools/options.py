"""Option tools: contract search, an underlying's chain with greeks, and exercise (issue #15).

Placing option orders (one contract by its OCC symbol, or a multi-leg spread) is alpaca_place_order's.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from alpaca_vault.broker.errors import AlpacaError
from alpaca_vault.broker.models import (
    OptionChainQuery,
    OptionContract,
    OptionContractsQuery,
    Snapshot,
    is_option_symbol,
)
from alpaca_vault.tools import voice
from alpaca_vault.tools.gate import alpaca_call
from alpaca_vault.tools.params import (
    CredentialRef,
    InvalidArgument,
    PageToken,
    StrikePrice,
    Symbol,
    symbol_of,
)
from alpaca_vault.tools.results import Bounded, respond, smaller_page

Underlying = Annotated[str, Field(min_length=1, max_length=12, description="Underlying ticker, like AAPL.")]
OptionKind = Annotated[Literal["call", "put"] | None, Field(description="call or put (default both).")]
Strike = Annotated[StrikePrice | None, Field()]
ExpiryFrom = Annotated[dt.date | None, Field(description="Expiring on or after this date.")]
ExpiryTo = Annotated[dt.date | None, Field(description="Expiring on or before this date.")]


def _underlying(value: str) -> str:
    symbol = symbol_of(value)
    if "/" in symbol or is_option_symbol(symbol):
        raise InvalidArgument(f"underlying is a stock ticker like AAPL, not {symbol}.")
    return symbol


class ContractsResult(Bounded):
    credential: str = Field(description="The credential used.")
    contracts: list[OptionContract]
    next_page_token: str | None = Field(default=None, description="Pass as page_token for the next page.")


async def alpaca_get_option_contracts(
    ctx: Context[Any, Any],
    underlying: Underlying,
    type: OptionKind = None,
    expiration_date_gte: ExpiryFrom = None,
    expiration_date_lte: ExpiryTo = None,
    strike_price_gte: Strike = None,
    strike_price_lte: Strike = None,
    limit: Annotated[int, Field(ge=1, le=1000, description="At most this many contracts.")] = 100,
    page_token: PageToken = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, ContractsResult]:
    """Search option contracts of an underlying by type, expiration range and strike range (paginated).

    Each contract's symbol (OCC, like AAPL261218C00190000) is what alpaca_place_order and the market
    data tools take."""
    query = OptionContractsQuery(
        underlying_symbols=[_underlying(underlying)], status="active", type=type,
        expiration_date_gte=expiration_date_gte, expiration_date_lte=expiration_date_lte,
        strike_price_gte=strike_price_gte, strike_price_lte=strike_price_lte, limit=limit, page_token=page_token,
    )  # fmt: skip
    async with alpaca_call(ctx, credential) as call:
        page = await call.send(call.broker.get_option_contracts, query)
    contracts = page.option_contracts
    summary = f"{len(contracts)} contract(s)"
    if contracts:
        dates = sorted({c.expiration_date for c in contracts if c.expiration_date})
        strikes = sorted(c.strike_price for c in contracts if c.strike_price is not None)
        if dates:
            summary += f" expiring {dates[0]} to {dates[-1]}"
        if strikes:
            summary += f", strikes {strikes[0]} to {strikes[-1]}"
    summary += "; more pages: pass next_page_token as page_token." if page.next_page_token else "."
    result = ContractsResult(
        credential=call.credential_name, contracts=contracts, next_page_token=page.next_page_token
    )
    return respond(result, summary, rest=smaller_page())


class ChainResult(Bounded):
    credential: str = Field(description="The credential used.")
    underlying: str
    snapshots: dict[str, Snapshot] = Field(
        description="By OCC symbol: latest quote and trade, implied volatility and greeks."
    )
    next_page_token: str | None = Field(default=None, description="Pass as page_token for the next page.")
    exchanges: dict[str, str] | None = Field(
        default=None, description="Option exchange code -> name, for the quotes' and trades' exchange fields."
    )


async def alpaca_get_option_chain(
    ctx: Context[Any, Any],
    underlying: Underlying,
    type: OptionKind = None,
    expiration_date_gte: ExpiryFrom = None,
    expiration_date_lte: ExpiryTo = None,
    strike_price_gte: Strike = None,
    strike_price_lte: Strike = None,
    limit: Annotated[int, Field(ge=1, le=1000, description="At most this many contracts.")] = 100,
    page_token: PageToken = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, ChainResult]:
    """The option chain of an underlying: each contract's latest quote and trade, implied volatility and
    greeks (delta, gamma, theta, vega, rho), paginated; exchanges: the exchange codes' names."""
    symbol = _underlying(underlying)
    query = OptionChainQuery(
        type=type, expiration_date_gte=expiration_date_gte, expiration_date_lte=expiration_date_lte,
        strike_price_gte=strike_price_gte, strike_price_lte=strike_price_lte, limit=limit, page_token=page_token,
    )  # fmt: skip
    async with alpaca_call(ctx, credential) as call:
        try:  # a static table, kept once fetched; the chain stands without it
            exchanges = await call.broker.get_option_exchanges(call.keys)
        except AlpacaError:
            exchanges = None
        page = await call.send(call.broker.get_option_chain, symbol, query)
    snapshots = dict(sorted(page.snapshots.items()))
    summary = f"{len(snapshots)} {symbol} contract(s) in the chain"
    if snapshots:
        first, last = next(iter(snapshots)), next(reversed(snapshots))
        summary += f" ({voice.symbol(first)} to {voice.symbol(last)})"
    summary += "; more pages: pass next_page_token as page_token." if page.next_page_token else "."
    result = ChainResult(
        credential=call.credential_name, underlying=symbol, snapshots=snapshots,
        next_page_token=page.next_page_token, exchanges=exchanges,
    )  # fmt: skip
    return respond(result, summary, rest=smaller_page())


class ExerciseResult(BaseModel):
    credential: str = Field(description="The credential used.")
    environment: Literal["paper", "live"]
    symbol: str
    instruction: Literal["exercise", "do_not_exercise"]
    accepted: bool


async def alpaca_exercise_option(
    ctx: Context[Any, Any],
    symbol: Symbol,
    action: Annotated[
        Literal["exercise", "do_not_exercise"],
        Field(description="exercise now, or do_not_exercise: do not auto-exercise at expiry."),
    ] = "exercise",
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, ExerciseResult]:
    """Exercise a held option contract now, or mark it do-not-exercise at expiry (OCC symbol).

    Live credentials are refused unless the server allows live trading."""
    contract = symbol_of(symbol)
    if not is_option_symbol(contract):
        raise InvalidArgument(f"{contract} is not an OCC option symbol (like AAPL261218C00190000).")
    async with alpaca_call(ctx, credential) as call:
        method = call.broker.exercise_option if action == "exercise" else call.broker.do_not_exercise_option
        await call.send(method, contract)
    done = "Exercise requested" if action == "exercise" else "Do-not-exercise instruction set"
    result = ExerciseResult(
        credential=call.credential_name, environment=call.resolved.environment, symbol=contract,
        instruction=action, accepted=True,
    )  # fmt: skip
    summary = f"{done} for {contract} in '{call.credential_name}' ({call.resolved.environment})."
    if action == "exercise":
        summary += " alpaca_get_positions and alpaca_get_activities show the result."
    return respond(result, summary)
