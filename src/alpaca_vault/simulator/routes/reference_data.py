"""Reference data: news (v1beta1), corporate actions (Market Data v1) and corporate action
announcements (Trading API v2)."""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.simulator import corporate_actions
from alpaca_vault.simulator.books import Account
from alpaca_vault.simulator.errors import invalid, not_found
from alpaca_vault.simulator.routes.common import (
    authenticated,
    bool_param,
    choice_param,
    date_param,
    int_param,
    json_response,
    list_param,
    simulator,
    symbols_param,
    time_param,
    trading_day,
)


def _offset(request: Request) -> int:
    token = request.query_params.get("page_token")
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise invalid("invalid page_token") from None


def _next_token(offset: int, limit: int, total: int) -> str | None:
    following = offset + limit
    return base64.urlsafe_b64encode(str(following).encode()).decode() if following < total else None


@authenticated
async def news(request: Request, account: Account) -> Response:
    sort = choice_param(request, "sort", ("asc", "desc"), "desc")
    limit = int_param(request, "limit", 10, 1, 50)
    found = simulator(request).news.search(
        symbols_param(request, required=False),
        time_param(request, "start"),
        time_param(request, "end"),
        descending=sort == "desc",
        exclude_contentless=bool_param(request, "exclude_contentless"),
    )
    offset = _offset(request)
    include_content = bool_param(request, "include_content")
    return json_response(
        {
            "news": [a.to_json(include_content) for a in found[offset : offset + limit]],
            "next_page_token": _next_token(offset, limit, len(found)),
        }
    )


@authenticated
async def corporate_action_list(request: Request, account: Account) -> Response:
    today = trading_day(request)
    types = list_param(request, "types")
    unknown = set(types) - set(corporate_actions.TYPES)
    if unknown:
        raise invalid(f"invalid types: {', '.join(sorted(unknown))}")
    start = date_param(request, "start", today) or today
    end = date_param(request, "end", today) or today
    if end < start:
        raise invalid("end must not be before start")
    found = corporate_actions.search(
        corporate_actions.dataset(today),
        symbols=list_param(request, "symbols"),
        cusips=list_param(request, "cusips"),
        types=types,
        start=start,
        end=end,
        ids=list_param(request, "ids"),
    )
    if choice_param(request, "sort", ("asc", "desc"), "asc") == "desc":
        found.reverse()
    limit = int_param(request, "limit", 1000, 1, 1000)
    offset = _offset(request)
    grouped: dict[str, list[dict[str, object]]] = {}
    for action in found[offset : offset + limit]:
        grouped.setdefault(action.type + "s", []).append(action.to_json())
    return json_response(
        {"corporate_actions": grouped, "next_page_token": _next_token(offset, limit, len(found))}
    )


@authenticated
async def announcement_list(request: Request, account: Account) -> Response:
    ca_types = list_param(request, "ca_types")
    if not ca_types:
        raise invalid("ca_types is required (dividend, merger, spinoff, split)")
    since, until = date_param(request, "since"), date_param(request, "until")
    if since is None or until is None:
        raise invalid("since and until are required (YYYY-MM-DD)")
    if until - since > timedelta(days=90):
        raise invalid("the date range is limited to 90 days")
    date_type = request.query_params.get("date_type")
    if date_type and date_type.removesuffix("_date") not in ("declaration", "ex", "record", "payable"):
        raise invalid("date_type must be declaration, ex, record or payable")
    return json_response(
        corporate_actions.announcements(
            corporate_actions.dataset(trading_day(request)),
            ca_types,
            since,
            until,
            request.query_params.get("symbol"),
            date_type,
        )
    )


@authenticated
async def announcement_by_id(request: Request, account: Account) -> Response:
    wanted = request.path_params["announcement_id"]
    for action in corporate_actions.dataset(trading_day(request)):
        try:
            item = corporate_actions.announcement_json(action)
        except KeyError:
            continue
        if item["id"] == wanted:
            return json_response(item)
    raise not_found("corporate action announcement not found")


routes = [
    Route("/v1beta1/news", news, methods=["GET"]),
    Route("/v1/corporate-actions", corporate_action_list, methods=["GET"]),
    Route("/v2/corporate_actions/announcements", announcement_list, methods=["GET"]),
    Route("/v2/corporate_actions/announcements/{announcement_id}", announcement_by_id, methods=["GET"]),
]
