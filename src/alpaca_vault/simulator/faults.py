"""Fault injection on demand: latency, 5xx, 429 with Retry-After, and lost responses.

A pure ASGI middleware (cheap when no fault is set). Faults match ``"METHOD PATH"`` with
fnmatch globs and never touch the ``/_simulator/`` admin routes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import json
import math
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alpaca_vault.simulator.config import FaultSpec

_BODIES: dict[int, dict[str, Any]] = {
    429: {"code": 42910000, "message": "rate limit exceeded"},
    500: {"code": 50010000, "message": "internal server error occurred"},
    502: {"code": 50210000, "message": "bad gateway"},
    503: {"code": 50310000, "message": "service unavailable"},
    504: {"code": 50410000, "message": "gateway timeout"},
}
FAULT_STATUSES = frozenset(_BODIES)
LOST_RESPONSES = frozenset({"504", "hang", "drop"})


@dataclass
class ActiveFault:
    id: str
    spec: FaultSpec
    method: str
    path: str
    remaining: int | None
    window: deque[float] = field(default_factory=deque)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **dataclasses.asdict(self.spec), "remaining": self.remaining}


def parse_fault(body: dict[str, Any]) -> FaultSpec:
    """A FaultSpec from admin JSON; ValueError with a readable message on bad input."""
    allowed = {f.name for f in dataclasses.fields(FaultSpec)}
    unknown = set(body) - allowed
    if unknown:
        raise ValueError(
            f"unknown fault fields: {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}"
        )
    fields = {k: v for k, v in body.items() if v is not None}
    try:
        for name in ("status", "count", "latency_ms", "retry_after", "rate_limit_per_minute"):
            if name in fields:
                fields[name] = int(fields[name])
        if "rate" in fields:
            fields["rate"] = float(fields["rate"])
        if "lost_response" in fields:
            fields["lost_response"] = str(fields["lost_response"])
    except (TypeError, ValueError):
        raise ValueError(f"fault fields must be numbers where numbers are expected: {body}") from None
    spec = FaultSpec(**fields)
    if not isinstance(spec.match, str) or not spec.match.strip():
        raise ValueError('match must be "METHOD PATH-GLOB", e.g. "POST /v2/orders" or "* *"')
    if spec.status is not None and spec.status not in FAULT_STATUSES:
        raise ValueError(f"status must be one of {sorted(FAULT_STATUSES)}")
    if not 0.0 <= spec.rate <= 1.0:
        raise ValueError("rate must be between 0 and 1")
    if spec.count is not None and spec.count < 1:
        raise ValueError("count must be >= 1 or null (until cleared)")
    if spec.latency_ms < 0 or spec.retry_after < 0:
        raise ValueError("latency_ms and retry_after must be >= 0")
    if spec.rate_limit_per_minute is not None and spec.rate_limit_per_minute < 0:
        raise ValueError("rate_limit_per_minute must be >= 0")
    if spec.lost_response is not None and spec.lost_response not in LOST_RESPONSES:
        raise ValueError(f"lost_response must be one of {sorted(LOST_RESPONSES)}")
    return spec


class FaultInjector:
    """The set of active faults, shared by every request."""

    def __init__(self, seed: int, specs: list[FaultSpec]) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._faults: list[ActiveFault] = []
        for spec in specs:
            self.add(spec)

    def add(self, spec: FaultSpec) -> ActiveFault:
        method, _, path = spec.match.strip().partition(" ")
        fault = ActiveFault(
            id=str(uuid.uuid4()),
            spec=spec,
            method=method.upper() or "*",
            path=path.strip() or "*",
            remaining=spec.count,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def __bool__(self) -> bool:
        return bool(self._faults)

    def decide(self, method: str, path: str) -> Decision:
        """What happens to one request; consumes counts and rate-limit budget."""
        decision = Decision()
        now = time.monotonic()
        with self._lock:
            for fault in list(self._faults):
                if not (fnmatch.fnmatchcase(method, fault.method) and fnmatch.fnmatchcase(path, fault.path)):
                    continue
                spec = fault.spec
                acted = False
                if spec.rate_limit_per_minute is not None:
                    while fault.window and now - fault.window[0] >= 60:
                        fault.window.popleft()
                    if len(fault.window) >= spec.rate_limit_per_minute:
                        wait = 60 - (now - fault.window[0]) if fault.window else 60
                        decision.status = decision.status or 429
                        decision.retry_after = max(1, math.ceil(wait))
                        acted = True
                    else:
                        fault.window.append(now)
                if spec.status is not None and decision.status is None and self._random.random() < spec.rate:
                    decision.status = spec.status
                    decision.retry_after = spec.retry_after
                    acted = True
                if spec.lost_response is not None and decision.status is None and decision.lost is None:
                    decision.lost = spec.lost_response
                    decision.hang_ms = spec.latency_ms
                    acted = True
                elif spec.latency_ms:
                    decision.latency_ms = max(decision.latency_ms, spec.latency_ms)
                    acted = acted or (spec.status is None and spec.rate_limit_per_minute is None)
                if acted and fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
        return decision


@dataclass
class Decision:
    latency_ms: int = 0
    status: int | None = None
    retry_after: int = 1
    lost: str | None = None
    hang_ms: int = 0


def _json_response(status: int, retry_after: int | None) -> tuple[Message, Message]:
    body = json.dumps(_BODIES[status]).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


class FaultMiddleware:
    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.injector or scope["path"].startswith("/_simulator"):
            await self.app(scope, receive, send)
            return
        decision = self.injector.decide(scope["method"], scope["path"])
        if decision.latency_ms:
            await asyncio.sleep(decision.latency_ms / 1000)
        if decision.status is not None:
            start, body = _json_response(
                decision.status, decision.retry_after if decision.status == 429 else None
            )
            await send(start)
            await send(body)
            return
        if decision.lost is None:
            await self.app(scope, receive, send)
            return
        # Apply the request for real, then lose its answer.
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        if decision.lost == "504":
            start, body = _json_response(504, None)
            await send(start)
            await send(body)
        elif decision.lost == "hang":
            await asyncio.sleep(decision.hang_ms / 1000)
            for message in captured:
                await send(message)
        else:  # "drop": promise a body, send none; the server then closes the connection.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
                }
            )
