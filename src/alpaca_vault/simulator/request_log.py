"""When each API request arrived, per key id: what a test measures a client's request rate with.

``GET /_simulator/requests/{api_key}`` answers ``{"count": n, "arrivals": [seconds, ...]}`` (wall-clock
seconds, oldest first); ``DELETE /_simulator/requests`` forgets everything. Arrivals are recorded on
entry, before fault injection, so a request answered 429 or 5xx still counts: Alpaca counts it too.
Bounded: at most ``MAX_KEYS`` key ids (least recently seen forgotten) and ``MAX_ARRIVALS`` each.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_KEYS = 1_000
MAX_ARRIVALS = 10_000


class RequestLog:
    def __init__(self) -> None:
        self._arrivals: OrderedDict[str, deque[float]] = OrderedDict()

    def record(self, api_key: str, at: float) -> None:
        arrivals = self._arrivals.get(api_key)
        if arrivals is None:
            arrivals = self._arrivals[api_key] = deque(maxlen=MAX_ARRIVALS)
            while len(self._arrivals) > MAX_KEYS:
                self._arrivals.popitem(last=False)
        else:
            self._arrivals.move_to_end(api_key)
        arrivals.append(at)

    def arrivals(self, api_key: str) -> list[float]:
        return list(self._arrivals.get(api_key, ()))

    def clear(self) -> None:
        self._arrivals.clear()


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_simulator"):
            for name, value in scope.get("headers") or ():
                if name == b"apca-api-key-id":
                    self.log.record(value.decode("latin-1")[:128], time.time())
                    break
        await self.app(scope, receive, send)
