"""Short-sale locate tools (issue #15): what a locate costs, your locates, and requesting one.

A hard-to-borrow stock can be sold short only with an active locate for the shares. Requesting one
changes state at Alpaca and costs its fee, so it is a guarded intent (``Intent.LOCATE``): the live
wall, the credential's policy mode and kill switch (a locate reduces no risk: refused while read_only
or halted), confirmation where the policy asks for it, and the audit trail.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from alpaca_vault.broker.errors import AlpacaConnectionError, AlpacaTimeout, AlpacaUnavailable
from alpaca_vault.broker.models import (
    LOCATE_LOT,
    Locate,
    LocateFee,
    LocateQuote,
    LocateQuoteError,
    LocateRequest,
    asset_kind,
)
from alpaca_vault.tools import voice
from alpaca_vault.tools.errors import LocateOutcomeUnknown
from alpaca_vault.tools.gate import alpaca_call
from alpaca_vault.tools.params import CredentialRef, InvalidArgument, PageToken, symbol_of, symbols_of
from alpaca_vault.tools.results import Bounded, Record, counted, money, respond, smaller_page


class LocatesResult(Bounded):
    credential: str = Field(description="The credential used.")
    locates: list[Locate] = Field(default_factory=list, description="Your locates, newest first.")
    quotes: list[LocateQuote] = Field(default_factory=list, description="Availability and fee per share.")
    unquoted: list[LocateQuoteError] = Field(
        default_factory=list, description="Symbols with no quote, and why (easy_to_borrow needs no locate)."
    )
    next_page_token: str | None = Field(default=None, description="Pass as page_token for the next page.")


def _stocks(value: str) -> list[str]:
    symbols = symbols_of(value)
    if others := [s for s in symbols if asset_kind(s) != "stock"]:
        raise InvalidArgument(f"Locates are for stocks only, not {', '.join(others[:5])}.")
    return symbols


async def alpaca_get_locates(
    ctx: Context[Any, Any],
    kind: Annotated[
        Literal["locates", "quotes"],
        Field(description="quotes: shares available and fee per share of symbols."),
    ] = "locates",
    symbols: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=1000,
            description="Stocks, comma-separated (quotes: up to 100; locates: one).",
        ),
    ] = None,
    locate_id: Annotated[
        str | None, Field(min_length=1, max_length=64, description="One locate by id.")
    ] = None,
    status: Literal["active", "expired", "rejected"] | None = None,
    start: Annotated[dt.date | None, Field(description="Trading date from.")] = None,
    end: Annotated[dt.date | None, Field(description="Trading date before.")] = None,
    limit: Annotated[int, Field(ge=1, le=1000)] = 100,
    page_token: PageToken = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, LocatesResult]:
    """Short-sale locates: yours (one by locate_id, or filtered and paginated), or with kind='quotes' the
    shares available and fee per share. A hard-to-borrow stock needs an active locate before a short sale
    (alpaca_request_locate). Alpaca offers locates on live accounts only."""
    if kind == "quotes":
        if symbols is None:
            raise InvalidArgument("kind='quotes' needs symbols, like 'GME' or 'GME,AMC'.")
        if locate_id or status or start or end or page_token:
            raise InvalidArgument(
                "kind='quotes' takes only symbols; locate_id, status, dates and pages are for locates."
            )
        wanted = _stocks(symbols)
        async with alpaca_call(ctx, credential) as call:
            answer = await call.send(call.broker.get_locate_quotes, wanted)
        parts = [
            f"{voice.symbol(q.symbol)}: {q.available_qty} available"
            + (f" at {money(q.price)}/share" if q.price else "")
            for q in answer.quotes[:10]
        ]
        if answer.errors:
            unquoted = ", ".join(
                f"{voice.symbol(e.symbol)} ({voice.ident(e.code)})" for e in answer.errors[:10]
            )
            parts.append(f"no quote for {unquoted}")
        result = LocatesResult(credential=call.credential_name, quotes=answer.quotes, unquoted=answer.errors)
        return respond(
            result, "Locate quotes: " + "; ".join(parts) + ".", records="quotes", rest=_quotes_left_out
        )
    symbol = None
    if symbols is not None:
        chosen = _stocks(symbols)
        if len(chosen) > 1:
            raise InvalidArgument("Filter your locates by one symbol (kind='quotes' takes several).")
        symbol = chosen[0]
    if start is not None and end is not None and end <= start:
        raise InvalidArgument(f"end ({end}) must be after start ({start}).")
    async with alpaca_call(ctx, credential) as call:
        if locate_id is not None:
            found = [await call.send(call.broker.get_locate, locate_id)]
            token = None
        else:
            page = await call.send(
                call.broker.list_locates, status=status, symbol=symbol, start=start, end=end, limit=limit,
                page_token=page_token,
            )  # fmt: skip
            found, token = page.locates, page.next_page_token
    lines = [
        f"{voice.symbol(loc.symbol)} {voice.word(loc.status, voice.LOCATE_STATUSES)} "
        f"{loc.located_qty or 0}/{loc.requested_qty}"
        for loc in found[:10]
    ]
    summary = counted(len(found), "locate") + (": " + ", ".join(lines) if lines else "")
    summary += "; more pages: pass next_page_token as page_token." if token else "."
    return respond(
        LocatesResult(credential=call.credential_name, locates=found, next_page_token=token),
        summary,
        records="locates",
        rest=smaller_page(),
    )


def _quotes_left_out(kept: list[Record], omitted: list[Record]) -> str:
    symbols = [voice.symbol(record.get("symbol")) for _, record in omitted[:40]]
    return "call alpaca_get_locates(kind='quotes') again with symbols='" + ",".join(symbols) + "'"


class LocateResult(BaseModel):
    credential: str = Field(description="The credential used.")
    environment: Literal["paper", "live"]
    locate: Locate
    request_id: str = Field(description="The request's idempotency key: a retry with it is charged once.")


async def alpaca_request_locate(
    ctx: Context[Any, Any],
    symbol: Annotated[str, Field(min_length=1, max_length=32, description="Stock ticker, like GME.")],
    qty: Annotated[int, Field(ge=LOCATE_LOT, le=10_000_000, description="Shares, in round lots of 100.")],
    limit_price: LocateFee | None = None,
    all_or_none: Annotated[bool, Field(description="All qty or nothing.")] = False,
    request_id: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=128,
            pattern=r"^[!-~]+$",
            description="Retrying? The request_id of the first try (one is made and returned when omitted).",
        ),
    ] = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, LocateResult]:
    """Request a short-sale locate of a hard-to-borrow stock for today (until 8 pm New York time); Alpaca
    charges its fee on acceptance. Answer: active (located_qty, total_fee) or rejected. A retry after an
    unanswered call must reuse its request_id, so Alpaca charges once. Live credentials are refused unless
    the server allows live trading."""
    try:
        request = LocateRequest(
            symbol=symbol_of(symbol), qty=qty, limit_price=limit_price, all_or_none=all_or_none
        )
    except ValueError as exc:
        raise InvalidArgument(_reason(exc)) from None
    key = request_id or f"locate-{uuid.uuid4().hex}"
    async with alpaca_call(ctx, credential) as call:
        try:
            locate = await call.send(call.broker.create_locate, request, idempotency_key=key)
        except (AlpacaTimeout, AlpacaConnectionError, AlpacaUnavailable) as exc:
            if not getattr(exc, "request_sent", True):  # a 5xx answer means it arrived
                raise
            raise LocateOutcomeUnknown(key) from exc
    env = call.resolved.environment
    if locate.status == "active":
        summary = (
            f"Locate {voice.ident(locate.id)} active on '{call.credential_name}' ({env}): {locate.located_qty} of "
            f"{locate.requested_qty} {voice.symbol(locate.symbol)} at {money(locate.located_price)}/share, fee "
            f"{money(locate.total_fee)}"
            + (f", expires {locate.expires_at.isoformat()}" if locate.expires_at else "")
            + ". A short sale of up to the located shares may follow."
        )
    else:
        summary = (
            f"Locate {voice.ident(locate.id)} for {locate.requested_qty} {voice.symbol(locate.symbol)} on "
            f"'{call.credential_name}' ({env}) is {voice.word(locate.status, voice.LOCATE_STATUSES)}: "
            "nothing was located and no fee charged (rejection_reason in the data)."
        )
    summary += f" request_id: {voice.ident(key)}."
    return respond(
        LocateResult(credential=call.credential_name, environment=env, locate=locate, request_id=key), summary
    )


def _reason(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors(include_input=False, include_url=False)[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {str(first['msg']).removeprefix('Value error, ')}"
    return str(exc)
