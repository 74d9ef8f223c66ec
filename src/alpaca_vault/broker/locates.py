"""Short-sale locates: quotes (availability and fee), requests, and the account's locates.

Alpaca's Locates API lives under ``/v1`` of the trading base URL and is not offered in its paper
environment. A locate request carries an ``Idempotency-Key``: Alpaca answers a repeat of the same key
with the original locate, so a lost answer can be retried without locating (and paying) twice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from . import arguments as args
from .errors import InvalidRequestError
from .models import Locate, LocateQuotes, LocateRequest, LocatesPage, LocateStatus
from .transport import AlpacaKeys, AlpacaTransport

#: Most symbols one locate quote request may name (Alpaca's limit).
MAX_LOCATE_QUOTE_SYMBOLS = 100


class LocatesApi(AlpacaTransport):
    async def get_locate_quotes(self, keys: AlpacaKeys, symbols: str | Sequence[str]) -> LocateQuotes:
        """Locate availability and fee per share for up to 100 stocks; unquotable symbols come as errors."""
        wanted = args.symbols(symbols)
        if len(wanted) > MAX_LOCATE_QUOTE_SYMBOLS:
            raise InvalidRequestError(f"ask for locate quotes of at most {MAX_LOCATE_QUOTE_SYMBOLS} symbols.")
        url = self._trading(keys, "/v1/locates/quotes")
        return self._parse(LocateQuotes, await self._get(keys, url, {"symbols": ",".join(wanted)}))

    async def list_locates(
        self,
        keys: AlpacaKeys,
        *,
        status: LocateStatus | None = None,
        symbol: str | None = None,
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> LocatesPage:
        """The account's locates, newest first; ``start``/``end`` bound the locate trading date."""
        params = {
            "status": status,
            "symbol": args.symbols(symbol)[0] if symbol else None,
            "start": args.time_param(start, "start"),
            "end": args.time_param(end, "end"),
            "limit": args.limit_param(limit, 10_000),
            "page_token": args.page_token(page_token),
        }
        return self._parse(LocatesPage, await self._get(keys, self._trading(keys, "/v1/locates"), params))

    async def get_locate(self, keys: AlpacaKeys, locate_id: str) -> Locate:
        url = self._trading(keys, f"/v1/locates/{args.uuid_param(locate_id, 'locate id')}")
        return self._parse(Locate, await self._get(keys, url))

    async def create_locate(
        self, keys: AlpacaKeys, request: LocateRequest, *, idempotency_key: str | None = None
    ) -> Locate:
        """Request a locate (Alpaca charges its fee on acceptance); the answer says active or rejected.

        One ``Idempotency-Key`` per logical request (a new UUID unless given) makes retries safe.
        """
        self._check_may_trade(keys, "request a short-sale locate")
        key = idempotency_key or str(uuid.uuid4())
        if not 1 <= len(key) <= 128 or not key.isascii() or not key.isprintable():
            raise InvalidRequestError("the idempotency key is 1 to 128 printable ASCII characters.")
        url = self._trading(keys, "/v1/locates")
        payload = await self._call(
            keys, "POST", url, body=request.to_alpaca(), idempotent=True, headers={"Idempotency-Key": key}
        )
        return self._parse(Locate, payload)
