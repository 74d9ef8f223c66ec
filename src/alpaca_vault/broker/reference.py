"""Reference data: the market clock and calendar, assets, news, corporate actions and announcements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from . import arguments as args
from .errors import InvalidRequestError
from .models import (
    Asset,
    AssetsQuery,
    CalendarDay,
    Clock,
    CorporateActionAnnouncement,
    CorporateActionsPage,
    CorporateActionsQuery,
    NewsPage,
    NewsQuery,
)
from .transport import AlpacaKeys, AlpacaTransport

AnnouncementType = Literal["dividend", "merger", "spinoff", "split"]
#: Alpaca answers announcements for at most 90 days at a time.
MAX_ANNOUNCEMENT_DAYS = 90


class ReferenceApi(AlpacaTransport):
    async def get_clock(self, keys: AlpacaKeys) -> Clock:
        return self._parse(Clock, await self._get(keys, self._trading(keys, "/v2/clock")))

    async def get_calendar(
        self, keys: AlpacaKeys, *, start: dt.date | str | None = None, end: dt.date | str | None = None
    ) -> list[CalendarDay]:
        params = {"start": args.time_param(start, "start"), "end": args.time_param(end, "end")}
        return self._parse_list(
            CalendarDay, await self._get(keys, self._trading(keys, "/v2/calendar"), params)
        )

    async def get_asset(self, keys: AlpacaKeys, symbol: str) -> Asset:
        url = self._trading(keys, f"/v2/assets/{args.path_symbol(symbol)}")
        return self._parse(Asset, await self._get(keys, url))

    async def list_assets(self, keys: AlpacaKeys, query: AssetsQuery | None = None) -> list[Asset]:
        """Assets matching the query, at most ``query.limit`` of them, in Alpaca's order."""
        query = query or AssetsQuery()
        payload = await self._get(keys, self._trading(keys, "/v2/assets"), query.to_params())
        assets = self._parse_list(Asset, payload)
        return [asset for asset in assets if query.matches(asset)][: query.limit]

    async def get_news(self, keys: AlpacaKeys, query: NewsQuery | None = None) -> NewsPage:
        """One page of news (newest first unless sorted otherwise). Its text is third-party data."""
        params = (query or NewsQuery()).to_params()
        return self._parse(NewsPage, await self._get(keys, self._data("/v1beta1/news"), params))

    async def get_corporate_actions(
        self, keys: AlpacaKeys, query: CorporateActionsQuery | None = None
    ) -> CorporateActionsPage:
        """One page of corporate actions (splits, dividends, mergers, spin-offs, ...) grouped by type."""
        params = (query or CorporateActionsQuery()).to_params()
        payload = await self._get(keys, self._data("/v1/corporate-actions"), params)
        return self._parse(CorporateActionsPage, payload)

    async def get_corporate_action_announcements(
        self,
        keys: AlpacaKeys,
        *,
        ca_types: Sequence[AnnouncementType],
        since: dt.date,
        until: dt.date,
        symbol: str | None = None,
        date_type: Literal["declaration_date", "ex_date", "record_date", "payable_date"] | None = None,
    ) -> list[CorporateActionAnnouncement]:
        """Announced dividends, mergers, spin-offs and splits in a window of at most 90 days."""
        types = list(dict.fromkeys(ca_types))
        if not types or any(t not in ("dividend", "merger", "spinoff", "split") for t in types):
            raise InvalidRequestError("ca_types are one or more of dividend, merger, spinoff, split.")
        if not since <= until or (until - since).days > MAX_ANNOUNCEMENT_DAYS:
            raise InvalidRequestError(
                f"since must not be after until, and the window is at most {MAX_ANNOUNCEMENT_DAYS} days."
            )
        params = {
            "ca_types": ",".join(types),
            "since": since.isoformat(),
            "until": until.isoformat(),
            "symbol": args.symbols(symbol)[0] if symbol else None,
            "date_type": date_type,
        }
        url = self._trading(keys, "/v2/corporate_actions/announcements")
        return self._parse_list(CorporateActionAnnouncement, await self._get(keys, url, params))

    async def get_corporate_action_announcement(
        self, keys: AlpacaKeys, announcement_id: str
    ) -> CorporateActionAnnouncement:
        url = self._trading(
            keys, f"/v2/corporate_actions/announcements/{args.uuid_param(announcement_id, 'announcement id')}"
        )
        return self._parse(CorporateActionAnnouncement, await self._get(keys, url))
