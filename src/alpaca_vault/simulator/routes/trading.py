"""Trading API v2: account, orders, positions, clock, calendar, assets, history and activities."""

from __future__ import annotations

import math
import re
from datetime import date, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.simulator.assets import Asset, find_asset
from alpaca_vault.simulator.books import Account
from alpaca_vault.simulator.clock import NEW_YORK, next_trading_day, session, trading_days
from alpaca_vault.simulator.errors import invalid, not_found
from alpaca_vault.simulator.routes.common import (
    authenticated,
    bool_param,
    choice_param,
    contract_or_404,
    int_param,
    json_body,
    json_response,
    simulator,
    symbols_param,
    time_param,
    trading_day,
)
from alpaca_vault.simulator.views import asset_json

# ---------------------------------------------------------------- account


@authenticated
async def get_account(request: Request, account: Account) -> Response:
    return json_response(simulator(request).broker.account_json(account))


@authenticated
async def get_account_configurations(request: Request, account: Account) -> Response:
    return json_response(simulator(request).broker.configurations(account))


@authenticated
async def update_account_configurations(request: Request, account: Account) -> Response:
    body = await json_body(request)
    return json_response(simulator(request).broker.update_configurations(account, body))


# ---------------------------------------------------------------- orders


@authenticated
async def post_order(request: Request, account: Account) -> Response:
    body = await json_body(request)
    return json_response(simulator(request).broker.submit_order(account, body))


@authenticated
async def list_orders(request: Request, account: Account) -> Response:
    status = choice_param(request, "status", ("open", "closed", "all"), "open")
    direction = choice_param(request, "direction", ("asc", "desc"), "desc")
    side = choice_param(request, "side", ("buy", "sell"), None)
    orders = simulator(request).broker.list_orders(
        account,
        status=status or "open",
        limit=int_param(request, "limit", 50, 1, 500),
        after=time_param(request, "after"),
        until=time_param(request, "until"),
        direction=direction or "desc",
        nested=bool_param(request, "nested"),
        symbols=symbols_param(request, required=False) or None,
        side=side,
    )
    return json_response(orders)


@authenticated
async def cancel_all_orders(request: Request, account: Account) -> Response:
    return json_response(simulator(request).broker.cancel_all(account), 207)


@authenticated
async def get_order(request: Request, account: Account) -> Response:
    order = simulator(request).broker.get_order(
        account, request.path_params["order_id"], nested=bool_param(request, "nested")
    )
    return json_response(order)


@authenticated
async def get_order_by_client_id(request: Request, account: Account) -> Response:
    client_order_id = request.query_params.get("client_order_id")
    if not client_order_id:
        raise invalid("client_order_id is required")
    return json_response(simulator(request).broker.get_order_by_client_id(account, client_order_id))


@authenticated
async def replace_order(request: Request, account: Account) -> Response:
    body = await json_body(request)
    return json_response(
        simulator(request).broker.replace_order(account, request.path_params["order_id"], body)
    )


@authenticated
async def cancel_order(request: Request, account: Account) -> Response:
    simulator(request).broker.cancel_order(account, request.path_params["order_id"])
    return Response(status_code=204)


# ---------------------------------------------------------------- positions


@authenticated
async def list_positions(request: Request, account: Account) -> Response:
    return json_response(simulator(request).broker.positions(account))


@authenticated
async def get_position(request: Request, account: Account) -> Response:
    return json_response(simulator(request).broker.position(account, request.path_params["symbol"]))


@authenticated
async def close_position(request: Request, account: Account) -> Response:
    params = request.query_params
    order = simulator(request).broker.close_position(
        account, request.path_params["symbol"], qty=params.get("qty"), percentage=params.get("percentage")
    )
    return json_response(order)


@authenticated
async def close_all_positions(request: Request, account: Account) -> Response:
    results = simulator(request).broker.close_all_positions(account, bool_param(request, "cancel_orders"))
    return json_response(results, 207)


def _held_contract(request: Request) -> Asset:
    text = request.path_params["symbol_or_contract_id"]
    return contract_or_404(text, trading_day(request), missing="position does not exist")


@authenticated
async def exercise_position(request: Request, account: Account) -> Response:
    simulator(request).broker.exercise(account, _held_contract(request))
    return Response(status_code=200)


@authenticated
async def do_not_exercise_position(request: Request, account: Account) -> Response:
    simulator(request).broker.do_not_exercise(account, _held_contract(request))
    return Response(status_code=200)


# ---------------------------------------------------------------- clock, calendar, assets


@authenticated
async def get_clock(request: Request, account: Account) -> Response:
    clock = simulator(request).broker.clock
    now = clock.now()
    return json_response(
        {
            "timestamp": datetime.fromtimestamp(now, NEW_YORK).isoformat(),
            "is_open": clock.reports_open(now),
            "next_open": clock.next_open(now).isoformat(),
            "next_close": clock.next_close(now).isoformat(),
        }
    )


@authenticated
async def get_calendar(request: Request, account: Account) -> Response:
    today = trading_day(request)
    try:
        start = date.fromisoformat(request.query_params.get("start") or f"{today.year}-01-01")
        end = date.fromisoformat(request.query_params.get("end") or f"{today.year}-12-31")
    except ValueError:
        raise invalid("start and end must be dates in YYYY-MM-DD form") from None
    if (end - start).days > 366 * 60:
        raise invalid("the calendar covers at most 60 years per request")
    days = []
    for day in trading_days(start, end):
        hours = session(day)
        assert hours is not None
        early = hours[1].hour == 13
        days.append(
            {
                "date": day.isoformat(),
                "open": hours[0].strftime("%H:%M"),
                "close": hours[1].strftime("%H:%M"),
                "session_open": "0400",
                "session_close": "1700" if early else "2000",
                "settlement_date": next_trading_day(day).isoformat(),
            }
        )
    return json_response(days)


@authenticated
async def list_assets(request: Request, account: Account) -> Response:
    params = request.query_params
    assets = simulator(request).broker.universe()
    status = params.get("status")
    if status and status != "active":
        assets = []
    if params.get("asset_class"):
        assets = [a for a in assets if a.asset_class == params["asset_class"]]
    if params.get("exchange"):
        assets = [a for a in assets if a.exchange == params["exchange"]]
    return json_response([asset_json(a) for a in assets])


@authenticated
async def get_asset(request: Request, account: Account) -> Response:
    asset = find_asset(request.path_params["symbol"])
    if asset is None:
        raise not_found("asset not found")
    return json_response(asset_json(asset))


# ---------------------------------------------------------------- history and activities

_HISTORY_STEPS = {"1Min": 60, "5Min": 300, "15Min": 900, "1H": 3600, "1D": 86400}


@authenticated
async def portfolio_history(request: Request, account: Account) -> Response:
    broker = simulator(request).broker
    params = request.query_params
    timeframe = params.get("timeframe") or "1D"
    step = _HISTORY_STEPS.get(timeframe)
    if step is None:
        raise invalid("timeframe must be one of 1Min, 5Min, 15Min, 1H, 1D")
    period = params.get("period") or ("1M" if timeframe == "1D" else "1D")
    match = re.fullmatch(r"(\d+)(D|W|M|A)", period)
    if not match:
        raise invalid("period must be a number followed by D, W, M or A (e.g. 1D, 1W, 1M, 1A)")
    days = int(match.group(1)) * {"D": 1, "W": 7, "M": 30, "A": 365}[match.group(2)]
    if days > 36600:  # keeps the date arithmetic below in range
        raise invalid("period must be at most 100 years")
    now = broker.clock.now()
    end = time_param(request, "end") or now
    if params.get("date_end"):
        try:
            end = datetime.combine(
                date.fromisoformat(params["date_end"]), datetime.max.time(), NEW_YORK
            ).timestamp()
        except ValueError:
            raise invalid("date_end must be YYYY-MM-DD") from None
    end = min(end, now)
    start = time_param(request, "start") or end - days * 86400
    if step == 86400:
        points = [
            datetime.combine(d, datetime.min.time(), NEW_YORK).timestamp()
            for d in trading_days(
                datetime.fromtimestamp(start, NEW_YORK).date(), datetime.fromtimestamp(end, NEW_YORK).date()
            )
        ]
        values_at = [min(end, p + 16 * 3600) for p in points]
    else:
        # Left-labeled windows, each valued at its end (the last one: now), as Alpaca does.
        first = math.floor(start / step) * step
        points = [float(t) for t in range(int(first), math.ceil(end), step)]
        values_at = [min(p + step, end) for p in points]
    if len(points) > 5000:
        raise invalid("too many data points; choose a shorter period or a larger timeframe")
    equity = broker.equity_series(account, values_at)
    base = equity[0] if equity else account.initial_cash
    profit = [e - base for e in equity]
    return json_response(
        {
            "timestamp": [int(p) for p in points],
            "equity": [float(e) for e in equity],
            "profit_loss": [float(p) for p in profit],
            "profit_loss_pct": [float(p / base) if base else 0.0 for p in profit],
            "base_value": float(base),
            "base_value_asof": datetime.fromtimestamp(start, NEW_YORK).date().isoformat(),
            "timeframe": timeframe,
            "cashflow": {},
        }
    )


@authenticated
async def activities(request: Request, account: Account) -> Response:
    params = request.query_params
    types = request.path_params.get("activity_type") or params.get("activity_types") or ""
    wanted = {t.strip().upper() for t in types.split(",") if t.strip()}
    items = simulator(request).broker.activities(account)
    if wanted:
        items = [i for i in items if i["activity_type"] in wanted]
    on_date = params.get("date")
    after, until = time_param(request, "after"), time_param(request, "until")
    if on_date:
        try:
            day = date.fromisoformat(on_date)
        except ValueError:
            raise invalid("date must be YYYY-MM-DD") from None
        items = [i for i in items if datetime.fromtimestamp(i["_t"], NEW_YORK).date() == day]
    if after is not None:
        items = [i for i in items if i["_t"] > after]
    if until is not None:
        items = [i for i in items if i["_t"] < until]
    direction = choice_param(request, "direction", ("asc", "desc"), "desc")
    if direction == "desc":
        items.reverse()
    token = params.get("page_token")
    if token:
        ids = [i["id"] for i in items]
        items = items[ids.index(token) + 1 :] if token in ids else []
    page_size = int_param(request, "page_size", 100, 1, 100)
    for item in items:
        item.pop("_t")
    return json_response(items[:page_size])


routes = [
    Route("/v2/account", get_account, methods=["GET"]),
    Route("/v2/account/configurations", get_account_configurations, methods=["GET"]),
    Route("/v2/account/configurations", update_account_configurations, methods=["PATCH"]),
    Route("/v2/account/portfolio/history", portfolio_history, methods=["GET"]),
    Route("/v2/account/activities", activities, methods=["GET"]),
    Route("/v2/account/activities/{activity_type}", activities, methods=["GET"]),
    Route("/v2/orders", post_order, methods=["POST"]),
    Route("/v2/orders", list_orders, methods=["GET"]),
    Route("/v2/orders", cancel_all_orders, methods=["DELETE"]),
    Route("/v2/orders:by_client_order_id", get_order_by_client_id, methods=["GET"]),
    Route("/v2/orders/{order_id}", get_order, methods=["GET"]),
    Route("/v2/orders/{order_id}", replace_order, methods=["PATCH"]),
    Route("/v2/orders/{order_id}", cancel_order, methods=["DELETE"]),
    Route("/v2/positions", list_positions, methods=["GET"]),
    Route("/v2/positions", close_all_positions, methods=["DELETE"]),
    Route("/v2/positions/{symbol_or_contract_id}/exercise", exercise_position, methods=["POST"]),
    Route(
        "/v2/positions/{symbol_or_contract_id}/do-not-exercise", do_not_exercise_position, methods=["POST"]
    ),
    Route("/v2/positions/{symbol:path}", get_position, methods=["GET"]),
    Route("/v2/positions/{symbol:path}", close_position, methods=["DELETE"]),
    Route("/v2/clock", get_clock, methods=["GET"]),
    Route("/v2/calendar", get_calendar, methods=["GET"]),
    Route("/v2/assets", list_assets, methods=["GET"]),
    Route("/v2/assets/{symbol:path}", get_asset, methods=["GET"]),
]
