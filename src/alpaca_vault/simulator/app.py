"""The simulator's ASGI app: Alpaca Trading API v2, Market Data v2 and the ``/_simulator`` admin routes."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alpaca_vault.simulator.clock import NEW_YORK, iso, parse_time, trading_days
from alpaca_vault.simulator.config import AccountSpec, SimulatorConfig
from alpaca_vault.simulator.errors import BrokerError, invalid, not_found, unauthorized
from alpaca_vault.simulator.faults import FaultInjector, FaultMiddleware, parse_fault
from alpaca_vault.simulator.market_data import MarketData
from alpaca_vault.simulator.prices import UNIVERSE, Asset, find_asset
from alpaca_vault.simulator.state import Account, Broker, new_key_pair

# Alpaca serves crypto market data without keys; those routes run on behalf of nobody.
_ANONYMOUS = Account(
    id="00000000-0000-0000-0000-000000000000",
    api_key="",
    secret_key="",
    account_number="",
    status="ACTIVE",
    initial_cash=Decimal(0),
    cash=Decimal(0),
    created_at=0.0,
)

Handler = Callable[[Request], Awaitable[Response]]
AccountHandler = Callable[[Request, Account], Awaitable[Response]]


class Simulator:
    """Mutable holder so ``/_simulator/reset`` can swap the books under live routes."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.faults = FaultInjector(config.seed, config.faults)
        self.broker = Broker(config)
        self.market = MarketData(self.broker.prices, self.broker.clock)

    def reset(self) -> None:
        self.broker = Broker(self.config)
        self.market = MarketData(self.broker.prices, self.broker.clock)
        self.faults.clear()
        for spec in self.config.faults:
            self.faults.add(spec)


def _json(content: Any, status: int = 200) -> Response:
    return JSONResponse(content, status_code=status)


def _error(error: BrokerError) -> Response:
    return JSONResponse(error.body(), status_code=error.status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise BrokerError(400, 40010000, "request body format is invalid") from None
    if not isinstance(body, dict):
        raise BrokerError(400, 40010000, "request body format is invalid")
    return body


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise invalid(f"invalid {name}: {text!r} is not an integer") from None
    if not low <= value <= high:
        raise invalid(f"{name} must be between {low} and {high}")
    return value


def _time_param(request: Request, name: str) -> float | None:
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise invalid(f"invalid {name}: {text!r} (use RFC 3339, e.g. 2024-01-02T15:04:05Z)") from None


def _bool_param(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("true", "1", "yes")


def _symbols_param(request: Request, required: bool = True) -> list[str]:
    text = request.query_params.get("symbols", "")
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if required and not symbols:
        raise invalid("symbols is required")
    return symbols


def _cash(value: Any) -> Decimal:
    try:
        cash = Decimal(str(value))
    except InvalidOperation:
        raise invalid('cash must be a decimal amount such as "100000"') from None
    if not cash.is_finite() or not 0 <= cash < 10**12:
        raise invalid("cash must be >= 0 and below 1,000,000,000,000")
    return cash


def asset_json(asset: Asset) -> dict[str, Any]:
    crypto = asset.is_crypto
    data: dict[str, Any] = {
        "id": asset.id,
        "class": asset.asset_class,
        "exchange": asset.exchange,
        "symbol": asset.symbol,
        "name": asset.name,
        "status": "active",
        "tradable": True,
        "marginable": not crypto,
        "maintenance_margin_requirement": 100 if crypto else 30,
        "margin_requirement_long": "100" if crypto else "30",
        "margin_requirement_short": "100",
        "shortable": not crypto,
        "easy_to_borrow": not crypto,
        "fractionable": asset.fractionable,
        "attributes": ["fractional_eh_enabled"] if asset.fractionable and not crypto else [],
    }
    if crypto:
        data.update(
            {"min_order_size": "0.000001", "min_trade_increment": "0.000000001", "price_increment": "0.01"}
        )
    return data


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    """An Alpaca-compatible paper broker as a Starlette app (trading and market data on one base URL)."""
    sim = Simulator(config or SimulatorConfig())

    def trading(handler: AccountHandler, keyless: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            headers = request.headers
            key_id = headers.get("apca-api-key-id")
            account = sim.broker.authenticate(key_id, headers.get("apca-api-secret-key"))
            try:
                if account is None:
                    if not (keyless and key_id is None):
                        raise unauthorized()
                    account = _ANONYMOUS
                return await handler(request, account)
            except BrokerError as error:
                return _error(error)

        return endpoint

    def admin(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except BrokerError as error:
                return _error(error)
            except (ValueError, TypeError) as error:
                return _json({"code": 42210000, "message": str(error)}, 422)

        return endpoint

    # ---------------------------------------------------------------- account

    async def get_account(request: Request, account: Account) -> Response:
        with sim.broker.lock:
            sim.broker.sync(account)
            return _json(sim.broker.account_json(account))

    async def get_account_configurations(request: Request, account: Account) -> Response:
        return _json(
            {
                "dtbp_check": "entry",
                "trade_confirm_email": "all",
                "suspend_trade": False,
                "no_shorting": True,
                "fractional_trading": True,
                "max_margin_multiplier": "1",
                "max_options_trading_level": 0,
                "pdt_check": "entry",
                "ptp_no_exception_entry": False,
            }
        )

    # ---------------------------------------------------------------- orders

    async def post_order(request: Request, account: Account) -> Response:
        body = await _body(request)
        order = sim.broker.submit_order(account, body)
        with sim.broker.lock:
            return _json(order.to_json())

    async def list_orders(request: Request, account: Account) -> Response:
        status = request.query_params.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise invalid("status must be open, closed or all")
        direction = request.query_params.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise invalid("direction must be asc or desc")
        side = request.query_params.get("side") or None
        if side not in (None, "buy", "sell"):
            raise invalid("side must be buy or sell")
        orders = sim.broker.list_orders(
            account,
            status=status,
            limit=_int_param(request, "limit", 50, 1, 500),
            after=_time_param(request, "after"),
            until=_time_param(request, "until"),
            direction=direction,
            nested=_bool_param(request, "nested"),
            symbols=_symbols_param(request, required=False) or None,
            side=side,
        )
        return _json(orders)

    async def cancel_all_orders(request: Request, account: Account) -> Response:
        canceled = sim.broker.cancel_all(account)
        with sim.broker.lock:
            return _json([{"id": o.id, "status": 200, "body": o.to_json()} for o in canceled], 207)

    async def get_order(request: Request, account: Account) -> Response:
        order = sim.broker.get_order(account, request.path_params["order_id"])
        with sim.broker.lock:
            return _json(order.to_json(nested=_bool_param(request, "nested")))

    async def get_order_by_client_id(request: Request, account: Account) -> Response:
        client_order_id = request.query_params.get("client_order_id")
        if not client_order_id:
            raise invalid("client_order_id is required")
        order = sim.broker.get_order_by_client_id(account, client_order_id)
        with sim.broker.lock:
            return _json(order.to_json())

    async def replace_order(request: Request, account: Account) -> Response:
        body = await _body(request)
        order = sim.broker.replace_order(account, request.path_params["order_id"], body)
        with sim.broker.lock:
            return _json(order.to_json())

    async def cancel_order(request: Request, account: Account) -> Response:
        sim.broker.cancel_order(account, request.path_params["order_id"])
        return Response(status_code=204)

    # ---------------------------------------------------------------- positions

    async def list_positions(request: Request, account: Account) -> Response:
        with sim.broker.lock:
            sim.broker.sync(account)
            positions = sorted(account.positions.values(), key=lambda p: p.asset.symbol)
            return _json([sim.broker.position_json(account, p) for p in positions])

    async def get_position(request: Request, account: Account) -> Response:
        with sim.broker.lock:
            position = sim.broker.get_position(account, request.path_params["symbol"])
            return _json(sim.broker.position_json(account, position))

    async def close_position(request: Request, account: Account) -> Response:
        params = request.query_params
        order = sim.broker.close_position(
            account, request.path_params["symbol"], qty=params.get("qty"), percentage=params.get("percentage")
        )
        with sim.broker.lock:
            return _json(order.to_json())

    async def close_all_positions(request: Request, account: Account) -> Response:
        results = sim.broker.close_all_positions(account, _bool_param(request, "cancel_orders"))
        return _json(results, 207)

    # ---------------------------------------------------------------- clock, calendar, assets

    async def get_clock(request: Request, account: Account) -> Response:
        clock = sim.broker.clock
        now = clock.now()
        return _json(
            {
                "timestamp": datetime.fromtimestamp(now, NEW_YORK).isoformat(),
                "is_open": clock.is_open(now),
                "next_open": clock.next_open(now).isoformat(),
                "next_close": clock.next_close(now).isoformat(),
            }
        )

    async def get_calendar(request: Request, account: Account) -> Response:
        today = datetime.fromtimestamp(sim.broker.clock.now(), NEW_YORK).date()
        try:
            start = date.fromisoformat(request.query_params.get("start") or f"{today.year}-01-01")
            end = date.fromisoformat(request.query_params.get("end") or f"{today.year}-12-31")
        except ValueError:
            raise invalid("start and end must be dates in YYYY-MM-DD form") from None
        if (end - start).days > 366 * 60:
            raise invalid("the calendar covers at most 60 years per request")
        days = trading_days(start, end)
        return _json(
            [
                {
                    "date": d.isoformat(),
                    "open": "09:30",
                    "close": "16:00",
                    "session_open": "0400",
                    "session_close": "2000",
                    "settlement_date": _next_weekday(d).isoformat(),
                }
                for d in days
            ]
        )

    async def list_assets(request: Request, account: Account) -> Response:
        params = request.query_params
        assets = sim.broker.universe()
        status = params.get("status")
        if status and status != "active":
            assets = []
        if params.get("asset_class"):
            assets = [a for a in assets if a.asset_class == params["asset_class"]]
        if params.get("exchange"):
            assets = [a for a in assets if a.exchange == params["exchange"]]
        return _json([asset_json(a) for a in assets])

    async def get_asset(request: Request, account: Account) -> Response:
        asset = find_asset(request.path_params["symbol"])
        if asset is None:
            raise not_found("asset not found")
        return _json(asset_json(asset))

    # ---------------------------------------------------------------- history and activities

    async def portfolio_history(request: Request, account: Account) -> Response:
        params = request.query_params
        timeframe = params.get("timeframe") or "1D"
        step = {"1Min": 60, "5Min": 300, "15Min": 900, "1H": 3600, "1D": 86400}.get(timeframe)
        if step is None:
            raise invalid("timeframe must be one of 1Min, 5Min, 15Min, 1H, 1D")
        period = params.get("period") or ("1M" if timeframe == "1D" else "1D")
        match = re.fullmatch(r"(\d+)(D|W|M|A)", period)
        if not match:
            raise invalid("period must be a number followed by D, W, M or A (e.g. 1D, 1W, 1M, 1A)")
        days = int(match.group(1)) * {"D": 1, "W": 7, "M": 30, "A": 365}[match.group(2)]
        now = sim.broker.clock.now()
        end = _time_param(request, "end") or now
        if params.get("date_end"):
            try:
                end = datetime.combine(
                    date.fromisoformat(params["date_end"]), datetime.max.time(), NEW_YORK
                ).timestamp()
            except ValueError:
                raise invalid("date_end must be YYYY-MM-DD") from None
        end = min(end, now)
        start = _time_param(request, "start") or end - days * 86400
        if step == 86400:
            points = [
                datetime.combine(d, datetime.min.time(), NEW_YORK).timestamp()
                for d in trading_days(
                    datetime.fromtimestamp(start, NEW_YORK).date(),
                    datetime.fromtimestamp(end, NEW_YORK).date(),
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
        with sim.broker.lock:
            sim.broker.sync(account)
            equity = [sim.broker.equity_at(account, t) for t in values_at]
        base = equity[0] if equity else account.initial_cash
        profit = [e - base for e in equity]
        return _json(
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

    async def activities(request: Request, account: Account) -> Response:
        params = request.query_params
        types = request.path_params.get("activity_type") or params.get("activity_types") or ""
        wanted = {t.strip().upper() for t in types.split(",") if t.strip()}
        items = sim.broker.activities(account) if (not wanted or "FILL" in wanted) else []
        on_date = params.get("date")
        after, until = _time_param(request, "after"), _time_param(request, "until")
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
        direction = params.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise invalid("direction must be asc or desc")
        if direction == "desc":
            items.reverse()
        token = params.get("page_token")
        if token:
            ids = [i["id"] for i in items]
            items = items[ids.index(token) + 1 :] if token in ids else []
        page_size = _int_param(request, "page_size", 100, 1, 100)
        for item in items:
            item.pop("_t")
        return _json(items[:page_size])

    # ---------------------------------------------------------------- market data

    def _asset_or_404(symbol: str, crypto: bool = False) -> Asset:
        asset = find_asset(symbol)
        if asset is None or asset.is_crypto != crypto:
            raise not_found(f"symbol not found: {symbol}")
        return asset

    def _many(symbols: list[str], crypto: bool = False) -> list[Asset]:
        assets = []
        for symbol in symbols:
            asset = find_asset(symbol)
            if asset is not None and asset.is_crypto == crypto:
                assets.append(asset)
        return assets

    def _bars_args(request: Request) -> dict[str, Any]:
        timeframe = request.query_params.get("timeframe")
        if not timeframe:
            raise invalid("timeframe is required")
        sort = request.query_params.get("sort", "asc")
        if sort not in ("asc", "desc"):
            raise invalid("sort must be asc or desc")
        return {
            "timeframe": timeframe,
            "start": _time_param(request, "start"),
            "end": _time_param(request, "end"),
            "limit": _int_param(request, "limit", 1000, 1, 10000),
            "page_token": request.query_params.get("page_token") or None,
            "descending": sort == "desc",
        }

    async def stock_latest_quote(request: Request, account: Account) -> Response:
        asset = _asset_or_404(request.path_params["symbol"])
        return _json({"symbol": asset.symbol, "quote": sim.market.quote(asset, sim.broker.clock.now())})

    async def stock_latest_trade(request: Request, account: Account) -> Response:
        asset = _asset_or_404(request.path_params["symbol"])
        return _json({"symbol": asset.symbol, "trade": sim.market.trade(asset, sim.broker.clock.now())})

    async def stock_latest_bar(request: Request, account: Account) -> Response:
        asset = _asset_or_404(request.path_params["symbol"])
        return _json({"symbol": asset.symbol, "bar": sim.market.latest_bar(asset, sim.broker.clock.now())})

    async def stock_bars(request: Request, account: Account) -> Response:
        asset = _asset_or_404(request.path_params["symbol"])
        bars, token = sim.market.bars([asset], **_bars_args(request))
        return _json({"bars": bars.get(asset.symbol, []), "symbol": asset.symbol, "next_page_token": token})

    async def stock_snapshot(request: Request, account: Account) -> Response:
        asset = _asset_or_404(request.path_params["symbol"])
        return _json({"symbol": asset.symbol, **sim.market.snapshot(asset, sim.broker.clock.now())})

    def _latest_many(kind: str, crypto: bool) -> AccountHandler:
        async def handler(request: Request, account: Account) -> Response:
            now = sim.broker.clock.now()
            assets = _many(_symbols_param(request), crypto)
            make = {"quotes": sim.market.quote, "trades": sim.market.trade, "bars": sim.market.latest_bar}[
                kind
            ]
            return _json({kind: {a.symbol: make(a, now) for a in assets}})

        return handler

    def _bars_many(crypto: bool) -> AccountHandler:
        async def handler(request: Request, account: Account) -> Response:
            assets = _many(_symbols_param(request), crypto)
            bars, token = sim.market.bars(assets, **_bars_args(request))
            return _json({"bars": bars, "next_page_token": token})

        return handler

    def _snapshots_many(crypto: bool) -> AccountHandler:
        async def handler(request: Request, account: Account) -> Response:
            now = sim.broker.clock.now()
            snapshots = {
                a.symbol: sim.market.snapshot(a, now) for a in _many(_symbols_param(request), crypto)
            }
            # Stocks answer with symbols at the top level; crypto wraps them in "snapshots".
            return _json({"snapshots": snapshots} if crypto else snapshots)

        return handler

    # ---------------------------------------------------------------- admin

    async def admin_create_account(request: Request) -> Response:
        body = await _body(request)
        api_key, secret_key = new_key_pair()
        cash = _cash(body.get("cash", "100000"))
        spec = AccountSpec(
            api_key=body.get("api_key") or api_key,
            secret_key=body.get("secret_key") or secret_key,
            cash=cash,
            account_number=body.get("account_number"),
            status=body.get("status") or "ACTIVE",
        )
        account = sim.broker.add_account(spec)
        return _json(_admin_account(account, secret=True), 201)

    def _admin_account(account: Account, secret: bool = False) -> dict[str, Any]:
        data = {
            "id": account.id,
            "api_key": account.api_key,
            "account_number": account.account_number,
            "status": account.status,
            "cash": str(account.cash),
        }
        if secret:
            data["secret_key"] = account.secret_key
        return data

    async def admin_list_accounts(request: Request) -> Response:
        with sim.broker.lock:
            return _json([_admin_account(a) for a in sim.broker.accounts.values()])

    def _admin_lookup(api_key: str | None) -> Account:
        account = sim.broker.accounts.get(api_key or "")
        if account is None:
            raise not_found("no simulator account with that api_key")
        return account

    async def admin_update_account(request: Request) -> Response:
        account = _admin_lookup(request.path_params["api_key"])
        body = await _body(request)
        with sim.broker.lock:
            if "status" in body:
                account.status = str(body["status"])
            if "cash" in body:
                account.cash = _cash(body["cash"])
            return _json(_admin_account(account))

    async def admin_orders(request: Request) -> Response:
        account = _admin_lookup(request.path_params.get("api_key") or request.query_params.get("api_key"))
        with sim.broker.lock:
            sim.broker.sync(account)
            return _json([o.to_json(nested=False) for o in account.orders])

    async def admin_add_fault(request: Request) -> Response:
        spec = parse_fault(await _body(request))
        fault = sim.faults.add(spec)
        return _json(fault.to_json(), 201)

    async def admin_list_faults(request: Request) -> Response:
        return _json(sim.faults.list())

    async def admin_clear_faults(request: Request) -> Response:
        sim.faults.clear()
        return Response(status_code=204)

    async def admin_remove_fault(request: Request) -> Response:
        if not sim.faults.remove(request.path_params["fault_id"]):
            raise not_found("fault not found")
        return Response(status_code=204)

    async def admin_reset(request: Request) -> Response:
        sim.reset()
        return Response(status_code=204)

    def _clock_state() -> dict[str, Any]:
        clock = sim.broker.clock
        return {"now": iso(clock.now()), "offset_seconds": clock.offset, "mode": clock.mode}

    async def admin_get_clock(request: Request) -> Response:
        return _json(_clock_state())

    async def admin_set_clock(request: Request) -> Response:
        body = await _body(request)
        with sim.broker.lock:
            if body.get("advance_seconds") is not None:
                advance = float(body["advance_seconds"])
                if advance < 0:
                    raise invalid("advance_seconds must be >= 0: the simulator's time never runs backwards")
                sim.broker.clock.advance(advance)
            if body.get("mode") is not None:
                if body["mode"] not in ("always_open", "exchange_hours"):
                    raise invalid("mode must be always_open or exchange_hours")
                sim.broker.clock.mode = body["mode"]
            return _json(_clock_state())

    async def admin_pin_price(request: Request) -> Response:
        body = await _body(request)
        asset = find_asset(str(body.get("symbol", "")))
        if asset is None:
            raise not_found("symbol not in the simulator's universe")
        price = body.get("price")
        with sim.broker.lock:
            sim.broker.prices.pin(asset.symbol, Decimal(str(price)) if price is not None else None)
            return _json({"symbol": asset.symbol, "price": str(sim.broker.price(asset))})

    async def admin_health(request: Request) -> Response:
        return _json({"status": "ok", "assets": len(UNIVERSE)})

    t = trading
    routes = [
        Route("/v2/account", t(get_account), methods=["GET"]),
        Route("/v2/account/configurations", t(get_account_configurations), methods=["GET"]),
        Route("/v2/account/portfolio/history", t(portfolio_history), methods=["GET"]),
        Route("/v2/account/activities", t(activities), methods=["GET"]),
        Route("/v2/account/activities/{activity_type}", t(activities), methods=["GET"]),
        Route("/v2/orders", t(post_order), methods=["POST"]),
        Route("/v2/orders", t(list_orders), methods=["GET"]),
        Route("/v2/orders", t(cancel_all_orders), methods=["DELETE"]),
        Route("/v2/orders:by_client_order_id", t(get_order_by_client_id), methods=["GET"]),
        Route("/v2/orders/{order_id}", t(get_order), methods=["GET"]),
        Route("/v2/orders/{order_id}", t(replace_order), methods=["PATCH"]),
        Route("/v2/orders/{order_id}", t(cancel_order), methods=["DELETE"]),
        Route("/v2/positions", t(list_positions), methods=["GET"]),
        Route("/v2/positions", t(close_all_positions), methods=["DELETE"]),
        Route("/v2/positions/{symbol:path}", t(get_position), methods=["GET"]),
        Route("/v2/positions/{symbol:path}", t(close_position), methods=["DELETE"]),
        Route("/v2/clock", t(get_clock), methods=["GET"]),
        Route("/v2/calendar", t(get_calendar), methods=["GET"]),
        Route("/v2/assets", t(list_assets), methods=["GET"]),
        Route("/v2/assets/{symbol:path}", t(get_asset), methods=["GET"]),
        # Market data: multi-symbol forms first, so "quotes" is never read as a symbol.
        Route("/v2/stocks/quotes/latest", t(_latest_many("quotes", False)), methods=["GET"]),
        Route("/v2/stocks/trades/latest", t(_latest_many("trades", False)), methods=["GET"]),
        Route("/v2/stocks/bars/latest", t(_latest_many("bars", False)), methods=["GET"]),
        Route("/v2/stocks/bars", t(_bars_many(False)), methods=["GET"]),
        Route("/v2/stocks/snapshots", t(_snapshots_many(False)), methods=["GET"]),
        Route("/v2/stocks/{symbol}/quotes/latest", t(stock_latest_quote), methods=["GET"]),
        Route("/v2/stocks/{symbol}/trades/latest", t(stock_latest_trade), methods=["GET"]),
        Route("/v2/stocks/{symbol}/bars/latest", t(stock_latest_bar), methods=["GET"]),
        Route("/v2/stocks/{symbol}/bars", t(stock_bars), methods=["GET"]),
        Route("/v2/stocks/{symbol}/snapshot", t(stock_snapshot), methods=["GET"]),
        Route(
            "/v1beta3/crypto/us/latest/quotes", t(_latest_many("quotes", True), keyless=True), methods=["GET"]
        ),
        Route(
            "/v1beta3/crypto/us/latest/trades", t(_latest_many("trades", True), keyless=True), methods=["GET"]
        ),
        Route("/v1beta3/crypto/us/latest/bars", t(_latest_many("bars", True), keyless=True), methods=["GET"]),
        Route("/v1beta3/crypto/us/bars", t(_bars_many(True), keyless=True), methods=["GET"]),
        Route("/v1beta3/crypto/us/snapshots", t(_snapshots_many(True), keyless=True), methods=["GET"]),
        Route("/_simulator/health", admin(admin_health), methods=["GET"]),
        Route("/_simulator/accounts", admin(admin_create_account), methods=["POST"]),
        Route("/_simulator/accounts", admin(admin_list_accounts), methods=["GET"]),
        Route("/_simulator/accounts/{api_key}", admin(admin_update_account), methods=["PATCH"]),
        Route("/_simulator/accounts/{api_key}/orders", admin(admin_orders), methods=["GET"]),
        Route("/_simulator/orders", admin(admin_orders), methods=["GET"]),
        Route("/_simulator/faults", admin(admin_add_fault), methods=["POST"]),
        Route("/_simulator/faults", admin(admin_list_faults), methods=["GET"]),
        Route("/_simulator/faults", admin(admin_clear_faults), methods=["DELETE"]),
        Route("/_simulator/faults/{fault_id}", admin(admin_remove_fault), methods=["DELETE"]),
        Route("/_simulator/reset", admin(admin_reset), methods=["POST"]),
        Route("/_simulator/clock", admin(admin_get_clock), methods=["GET"]),
        Route("/_simulator/clock", admin(admin_set_clock), methods=["POST"]),
        Route("/_simulator/prices", admin(admin_pin_price), methods=["POST"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            return _json({"code": 40410000, "message": "endpoint not found"}, 404)
        if status == 405:
            return _json({"code": 40510000, "message": "method not allowed"}, 405)
        return _json({"code": status * 100000, "message": "request failed"}, status)

    async def server_error(request: Request, exc: Exception) -> Response:
        # A simulator bug still answers in Alpaca's shape; the traceback goes to stderr via uvicorn.
        return _json({"code": 50010000, "message": "internal server error occurred"}, 500)

    app = Starlette(
        routes=routes,
        middleware=[Middleware(FaultMiddleware, injector=sim.faults)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.simulator = sim
    return app


def _next_weekday(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


__all__ = ["Simulator", "asset_json", "create_app"]
