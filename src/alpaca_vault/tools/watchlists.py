"""Watchlists (issue #15): list or get, create or change (name, symbols, add, remove), delete.

A watchlist's name is the account owner's text kept at Alpaca: it is shown in the data block, and
our summaries name the watchlist by its id.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from alpaca_vault.broker.models import Watchlist, WatchlistRequest
from alpaca_vault.tools import voice
from alpaca_vault.tools.gate import alpaca_call
from alpaca_vault.tools.params import CredentialRef, InvalidArgument, symbol_list_of
from alpaca_vault.tools.results import Bounded, respond

WatchlistId = Annotated[
    str,
    Field(min_length=36, max_length=36, description="The watchlist's id (alpaca_get_watchlists lists them)."),
]
Name = Annotated[str | None, Field(min_length=1, max_length=64, description="The watchlist's name.")]
SymbolsArg = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=40)]] | None, Field(max_length=1000)
]


class WatchlistsResult(Bounded):
    credential: str = Field(description="The credential used.")
    watchlists: list[Watchlist] = Field(description="One with its assets when asked by id; all without.")


class WatchlistResult(BaseModel):
    credential: str = Field(description="The credential used.")
    environment: Literal["paper", "live"]
    watchlist: Watchlist


class DeletedWatchlist(BaseModel):
    credential: str = Field(description="The credential used.")
    environment: Literal["paper", "live"]
    watchlist_id: str
    deleted: bool


def _symbols_in(watchlist: Watchlist) -> list[str]:
    return [asset.symbol for asset in watchlist.assets or []]


async def alpaca_get_watchlists(
    ctx: Context[Any, Any],
    watchlist_id: Annotated[
        str | None, Field(min_length=36, max_length=36, description="One watchlist (with its symbols).")
    ] = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, WatchlistsResult]:
    """List the account's watchlists, or get one by id with its symbols."""
    async with alpaca_call(ctx, credential) as call:
        if watchlist_id is None:
            watchlists = await call.send(call.broker.list_watchlists)
        else:
            watchlists = [await call.send(call.broker.get_watchlist, watchlist_id)]
    if watchlist_id is None:
        summary = f"{len(watchlists)} watchlist(s) in '{call.credential_name}'"
        summary += (": ids " + ", ".join(voice.ident(w.id) for w in watchlists[:20])) if watchlists else ""
        summary += ". Names are in the data block; pass watchlist_id for one list's symbols."
    else:
        symbols = _symbols_in(watchlists[0])
        summary = f"Watchlist {watchlist_id}: {len(symbols)} symbol(s)"
        summary += (
            (": " + ", ".join(map(voice.symbol, symbols[:30])) + (", ..." if len(symbols) > 30 else ""))
            if symbols
            else ""
        )
        summary += "."
    return respond(WatchlistsResult(credential=call.credential_name, watchlists=watchlists), summary)


async def alpaca_save_watchlist(
    ctx: Context[Any, Any],
    watchlist_id: Annotated[
        str | None,
        Field(min_length=36, max_length=36, description="The watchlist to change; omit to create."),
    ] = None,
    name: Name = None,
    symbols: Annotated[
        SymbolsArg, Field(description="Set the symbols to exactly these (at most 1000).")
    ] = None,
    add: Annotated[SymbolsArg, Field(max_length=100, description="Symbols to append.")] = None,
    remove: Annotated[SymbolsArg, Field(max_length=100, description="Symbols to remove.")] = None,
    credential: CredentialRef = None,
) -> Annotated[CallToolResult, WatchlistResult]:
    """Create a watchlist (name, optional symbols) or change one: rename, set its symbols, add or remove."""
    wanted, added, removed = symbol_list_of(symbols), symbol_list_of(add) or [], symbol_list_of(remove) or []
    if watchlist_id is None:
        if name is None:
            raise InvalidArgument("To create a watchlist give its name (or give watchlist_id to change one).")
        if removed:
            raise InvalidArgument("A new watchlist has nothing to remove: give symbols or add.")
        request = WatchlistRequest(name=name, symbols=list(dict.fromkeys([*(wanted or []), *added])))
    else:
        if name is None and wanted is None and not added and not removed:
            raise InvalidArgument("Nothing to change: give name, symbols, add or remove.")
        request = None
    async with alpaca_call(ctx, credential) as call:
        if request is not None:
            watchlist = await call.send(call.broker.create_watchlist, request)
        else:
            assert watchlist_id is not None
            watchlist = await call.send(call.broker.get_watchlist, watchlist_id)
            if name is not None or wanted is not None:
                change = WatchlistRequest(name=name or watchlist.name, symbols=wanted)
                watchlist = await call.send(call.broker.update_watchlist, watchlist_id, change)
            present = set(_symbols_in(watchlist))
            for symbol in added:
                if symbol not in present:
                    watchlist = await call.send(call.broker.add_to_watchlist, watchlist_id, symbol)
                    present.add(symbol)
            for symbol in removed:
                if symbol in present:
                    watchlist = await call.send(call.broker.remove_from_watchlist, watchlist_id, symbol)
                    present.discard(symbol)
    held = _symbols_in(watchlist)
    verb = "Created" if request is not None else "Saved"
    summary = (
        f"{verb} watchlist {voice.ident(watchlist.id)} in '{call.credential_name}': {len(held)} symbol(s)"
    )
    summary += (
        (": " + ", ".join(map(voice.symbol, held[:30])) + (", ..." if len(held) > 30 else "")) if held else ""
    )
    result = WatchlistResult(
        credential=call.credential_name, environment=call.resolved.environment, watchlist=watchlist
    )
    return respond(result, summary + ".")


async def alpaca_delete_watchlist(
    ctx: Context[Any, Any], watchlist_id: WatchlistId, credential: CredentialRef = None
) -> Annotated[CallToolResult, DeletedWatchlist]:
    """Delete a watchlist (its symbols are only a list: no order or position changes)."""
    async with alpaca_call(ctx, credential) as call:
        await call.send(call.broker.delete_watchlist, watchlist_id)
    result = DeletedWatchlist(
        credential=call.credential_name, environment=call.resolved.environment, watchlist_id=watchlist_id,
        deleted=True,
    )  # fmt: skip
    return respond(result, f"Deleted watchlist {watchlist_id} in '{call.credential_name}'.")
