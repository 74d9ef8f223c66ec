"""Options: contracts (Trading API v2) and option market data (v1beta1: bars, trades, quotes, snapshots, chain)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.simulator import options
from alpaca_vault.simulator.assets import EXPIRATION_HORIZON_DAYS, OPTION_UNDERLYINGS
from alpaca_vault.simulator.books import Account
from alpaca_vault.simulator.errors import invalid
from alpaca_vault.simulator.market_data import OPTION_FEEDS
from alpaca_vault.simulator.routes.common import (
    authenticated,
    choice_param,
    contract_or_404,
    date_param,
    int_param,
    json_response,
    list_param,
    simulator,
    trading_day,
)
from alpaca_vault.simulator.routes.market_data import bars, latest, snapshots, ticks

_EXCHANGES = {
    "A": "AMEX - NYSE American",
    "B": "BOX - Boston Options Exchange",
    "C": "CBOE - Cboe Options Exchange",
    "H": "MIAX Pearl",
    "I": "BATS - Cboe BZX Options Exchange",
    "M": "MIAX Options Exchange",
    "N": "NYSE Arca Options",
    "Q": "NASDAQ Options Market",
    "X": "PHLX - Nasdaq PHLX",
    "Z": "BATS - Cboe BZX",
}


def _strike_param(request: Request, name: str) -> Decimal | None:
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise invalid(f"invalid {name}: {text!r} is not a number") from None
    if not value.is_finite() or not 0 <= value < 10**7:
        raise invalid(f"invalid {name}: {text!r}")
    return value


def _filter(request: Request, underlyings: list[str], default_last: date | None) -> options.ContractFilter:
    today = trading_day(request)
    exact = date_param(request, "expiration_date")
    include_expired = request.query_params.get("status") == "inactive"
    earliest = today - timedelta(days=EXPIRATION_HORIZON_DAYS) if include_expired else today
    first = exact or date_param(request, "expiration_date_gte") or earliest
    last = exact or date_param(request, "expiration_date_lte") or default_last or date.max
    return options.ContractFilter(
        underlyings=underlyings,
        first_expiration=first,
        last_expiration=last,
        option_type=choice_param(request, "type", ("call", "put"), None),
        strike_low=_strike_param(request, "strike_price_gte"),
        strike_high=_strike_param(request, "strike_price_lte"),
        root_symbol=request.query_params.get("root_symbol") or None,
        include_expired=include_expired,
    )


# ---------------------------------------------------------------- contracts (Trading API)


@authenticated
async def list_contracts(request: Request, account: Account) -> Response:
    sim = simulator(request)
    underlyings = [s.upper() for s in list_param(request, "underlying_symbols")] or list(OPTION_UNDERLYINGS)
    status = choice_param(request, "status", ("active", "inactive"), "active")
    style = choice_param(request, "style", ("american", "european"), None)
    limit = int_param(request, "limit", 100, 1, 10000)
    today = trading_day(request)
    given = any(
        request.query_params.get(k) for k in ("expiration_date", "expiration_date_gte", "expiration_date_lte")
    )
    # As on Alpaca: without an expiration filter, contracts up to the next weekend.
    next_weekend = today + timedelta(days=(6 - today.weekday()) % 7 or 7)
    query = _filter(request, underlyings, None if given else next_weekend)
    found = options.contracts(query, today) if style != "european" else iter(())
    if status == "inactive":
        found = (c for c in found if c.expiration is not None and c.expiration < today)
    chosen, token = options.page(found, limit, request.query_params.get("page_token") or None)
    now = sim.broker.clock.now()
    last_close = sim.broker.clock.last_close(now)
    return json_response(
        {
            "option_contracts": [
                options.contract_json(c, sim.broker.prices, now, last_close) for c in chosen
            ],
            "next_page_token": token,
        }
    )


@authenticated
async def get_contract(request: Request, account: Account) -> Response:
    sim = simulator(request)
    contract = contract_or_404(request.path_params["symbol_or_id"], trading_day(request))
    now = sim.broker.clock.now()
    return json_response(
        options.contract_json(contract, sim.broker.prices, now, sim.broker.clock.last_close(now))
    )


# ---------------------------------------------------------------- option market data


def _check_feed(request: Request) -> None:
    choice_param(request, "feed", OPTION_FEEDS, None)


@authenticated
async def option_latest(request: Request, account: Account) -> Response:
    _check_feed(request)
    return latest(request, request.path_params["kind"], "us_option")


@authenticated
async def option_bars(request: Request, account: Account) -> Response:
    return bars(request, "us_option")


@authenticated
async def option_trades(request: Request, account: Account) -> Response:
    return ticks(request, "trades", "us_option")


@authenticated
async def option_snapshots(request: Request, account: Account) -> Response:
    _check_feed(request)
    return json_response({"snapshots": snapshots(request, "us_option"), "next_page_token": None})


@authenticated
async def option_chain(request: Request, account: Account) -> Response:
    """Snapshots of an underlying's contracts, filtered as contract search is, paginated."""
    _check_feed(request)
    sim = simulator(request)
    underlying = request.path_params["underlying"].upper()
    if underlying not in OPTION_UNDERLYINGS:
        return json_response({"snapshots": {}, "next_page_token": None})
    limit = int_param(request, "limit", 100, 1, 1000)
    found = options.contracts(_filter(request, [underlying], None), trading_day(request))
    chosen, token = options.page(found, limit, request.query_params.get("page_token") or None)
    now = sim.broker.clock.now()
    return json_response(
        {"snapshots": {c.symbol: sim.market.snapshot(c, now) for c in chosen}, "next_page_token": token}
    )


@authenticated
async def option_exchanges(request: Request, account: Account) -> Response:
    return json_response(_EXCHANGES)


routes = [
    Route("/v2/options/contracts", list_contracts, methods=["GET"]),
    Route("/v2/options/contracts/{symbol_or_id}", get_contract, methods=["GET"]),
    Route("/v1beta1/options/{kind:tick_kind}/latest", option_latest, methods=["GET"]),
    Route("/v1beta1/options/bars", option_bars, methods=["GET"]),
    Route("/v1beta1/options/trades", option_trades, methods=["GET"]),
    Route("/v1beta1/options/snapshots", option_snapshots, methods=["GET"]),
    Route("/v1beta1/options/snapshots/{underlying}", option_chain, methods=["GET"]),
    Route("/v1beta1/options/meta/exchanges", option_exchanges, methods=["GET"]),
]
