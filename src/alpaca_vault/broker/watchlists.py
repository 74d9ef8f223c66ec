"""Watchlists: list, get, create, rename or re-fill, add a symbol, remove a symbol, delete.

Watchlists are the account owner's own notes, not orders: changing one is not trading, so live
credentials may change them (no live-trading check). Every change is retried only where repeating
it has the same effect (replace, add/remove of one symbol, delete); creating is sent once.
"""

from __future__ import annotations

from . import arguments as args
from .models import Watchlist, WatchlistRequest
from .transport import AlpacaKeys, AlpacaTransport


class WatchlistsApi(AlpacaTransport):
    def _watchlist(self, keys: AlpacaKeys, watchlist_id: str, suffix: str = "") -> str:
        return self._trading(keys, f"/v2/watchlists/{args.uuid_param(watchlist_id, 'watchlist id')}{suffix}")

    async def list_watchlists(self, keys: AlpacaKeys) -> list[Watchlist]:
        """Every watchlist of the account (without their assets: get one for those)."""
        return self._parse_list(Watchlist, await self._get(keys, self._trading(keys, "/v2/watchlists")))

    async def get_watchlist(self, keys: AlpacaKeys, watchlist_id: str) -> Watchlist:
        return self._parse(Watchlist, await self._get(keys, self._watchlist(keys, watchlist_id)))

    async def create_watchlist(self, keys: AlpacaKeys, watchlist: WatchlistRequest) -> Watchlist:
        url = self._trading(keys, "/v2/watchlists")
        payload = await self._call(keys, "POST", url, body=watchlist.to_alpaca(), idempotent=False)
        return self._parse(Watchlist, payload)

    async def update_watchlist(
        self, keys: AlpacaKeys, watchlist_id: str, watchlist: WatchlistRequest
    ) -> Watchlist:
        """Rename and/or replace the symbols (omitted symbols: the name changes, the symbols stay)."""
        url = self._watchlist(keys, watchlist_id)
        payload = await self._call(keys, "PUT", url, body=watchlist.to_alpaca(), idempotent=True)
        return self._parse(Watchlist, payload)

    async def add_to_watchlist(self, keys: AlpacaKeys, watchlist_id: str, symbol: str) -> Watchlist:
        url = self._watchlist(keys, watchlist_id)
        body = {"symbol": args.symbols(symbol)[0]}
        return self._parse(Watchlist, await self._call(keys, "POST", url, body=body, idempotent=True))

    async def remove_from_watchlist(self, keys: AlpacaKeys, watchlist_id: str, symbol: str) -> Watchlist:
        url = self._watchlist(keys, watchlist_id, f"/{args.path_symbol(symbol)}")
        payload = await self._call(keys, "DELETE", url, idempotent=True)
        if payload is None:  # an empty 204 instead of the watchlist: read it back
            return await self.get_watchlist(keys, watchlist_id)
        return self._parse(Watchlist, payload)

    async def delete_watchlist(self, keys: AlpacaKeys, watchlist_id: str) -> None:
        await self._call(keys, "DELETE", self._watchlist(keys, watchlist_id), idempotent=True)
