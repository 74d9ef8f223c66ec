"""Guard benchmark: the latency the trading guard adds to alpaca_place_order, in-process.

    .venv/bin/python bench/guard.py [--orders 300]

Measures ``Guard.before_send`` (the gate's before-send hook for an order) on an SQLite vault
against the simulator on loopback (its own process), in alternating rounds:

* ``default``: a new paper credential's policy (no dollar rules: no quote is fetched);
* ``limits``: every limit set, a limit order (priced by its limit: no quote);
* ``limits+market``: every limit set, a market order: the latest quote is fetched to estimate its
  notional; that fetch is reported apart and subtracted from the guard's own time.

Each order's intent is inserted as in the server (so the counters grow as they would in a day).
Target: the guard's own time at most 1 ms p50 in-process, quote fetch excluded.

Each row gives wall time and CPU time (process_time: this process's threads, aiosqlite's included).
On a shared machine the wall time carries other people's load; the CPU time is what the guard costs.

The guard is built as the server builds it (the audit trail and the intent store), so its transaction
writes the intent and its ``order.intent`` event. The baseline (``intent only``) is what the server writes
for an order without the guard: ``OrderIntents.record``, the same intent and event in one transaction (the
server always writes it; the guard writes it inside its own transaction instead). "Added by the guard" is
before_send minus that baseline: the policy reads, the counters and the checks. ``hops`` counts aiosqlite's
worker-thread round trips per call (each about 0.2 ms of wake-ups on a small machine).

Also measured: the gate's credential read before its hooks (``vault.get``: an ORM session, as the gate
did until #14's latency work; ``vault.resolve``: one Core read, inline on SQLite, what it does now).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import aiosqlite.core
from pydantic import SecretStr

from alpaca_vault.audit.chain import STDIO, ChainKeys
from alpaca_vault.audit.log import AuditLog
from alpaca_vault.broker.client import AlpacaClient
from alpaca_vault.broker.models import OrderRequest
from alpaca_vault.db import Database
from alpaca_vault.db.migrate import upgrade_database
from alpaca_vault.guard.order_intents import OrderIntents
from alpaca_vault.guard.wiring import build_guard
from alpaca_vault.vault import CredentialService, KeyRing, generate_key

# aiosqlite's worker-thread round trips (each awaited statement step is one): counted, not changed.
HOPS = [0]
_execute = aiosqlite.core.Connection._execute


async def _counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
    HOPS[0] += 1
    return await _execute(self, fn, *args, **kwargs)


aiosqlite.core.Connection._execute = _counted  # type: ignore[method-assign]


@contextmanager
def simulator_process() -> Iterator[str]:
    """The simulator in its own process: in a thread of this one it would share the GIL and the CPU-time
    column with the guard (after a quote, the guard waited for the simulator thread's switch interval)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(Path(sys.executable).parent / "alpaca-vault"), "simulator", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Call:
    """The fields of the gate's ToolCall the guard reads."""

    tool: str
    intent: str
    user_id: uuid.UUID
    actor: Any
    credential: Any
    order: Any
    client_order_id: str | None
    order_intent: Any = None
    arguments: Any = None


@dataclass(frozen=True)
class Cred:
    id: uuid.UUID
    name: str
    environment: str


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000


async def main(args: argparse.Namespace) -> None:
    import httpx2

    scratch = Path(tempfile.mkdtemp(prefix="guard-bench-"))
    with simulator_process() as sim_url:
        db = Database.create(f"sqlite+aiosqlite:///{scratch / 'vault.db'}")
        await upgrade_database(db)
        keyring = KeyRing.load(generate_key(), scratch)
        vault = CredentialService(db, keyring)
        user = await vault.ensure_user("bench")
        creds: dict[str, Cred] = {}
        for name in ("default", "limits"):
            # One simulator account per credential: the vault refuses the same key pair twice.
            pair = httpx2.post(f"{sim_url}/_simulator/accounts", json={"cash": "1000000000"}).json()
            info = await vault.store(
                user.id, f"paper-{name}", "paper", SecretStr(pair["api_key"]), SecretStr(pair["secret_key"])
            )
            creds[name] = Cred(info.id, info.name, info.environment)
        audit = AuditLog(db, ChainKeys.from_keyring(keyring))
        intents = OrderIntents(db, audit)
        # The request budget raised: at the default 200 per minute the quote fetches would be paced.
        async with AlpacaClient(
            paper_url=sim_url, live_url=sim_url, data_url=sim_url, rate_limit_per_minute=100_000
        ) as broker:
            guard = build_guard(db, broker, vault, audit, intents=intents)
            await guard.policies.update(
                user.id,
                "paper-limits",
                {
                    "max_order_notional": Decimal(1_000_000_000),
                    "max_daily_notional": Decimal(1_000_000_000_000),
                    "max_orders_per_day": 1_000_000,
                    "max_orders_per_minute": 1_000_000,
                    "symbols": ["AAPL", "MSFT"],
                    "deny_symbols": ["GME"],
                    "order_types": ["market", "limit"],
                    "allow_extended_hours": False,
                },
            )
            limit = dict(symbol="AAPL", side="buy", qty=Decimal(1), type="limit", limit_price=Decimal(100))
            market = dict(symbol="AAPL", side="buy", qty=Decimal(1), type="market")
            scenarios = {
                "default": (creds["default"], limit),
                "limits": (creds["limits"], limit),
                "limits+market": (creds["limits"], market),
            }
            own: dict[str, list[float]] = {k: [] for k in scenarios}
            cpu: dict[str, list[float]] = {k: [] for k in scenarios}
            hops: dict[str, list[int]] = {k: [] for k in (*scenarios, "intent only")}
            reads: dict[str, list[float]] = {"vault.get": [], "vault.resolve": []}
            # Without the guard the durable intent is still written: one transaction with one insert.
            baseline: list[float] = []
            baseline_cpu: list[float] = []
            quote: list[float] = []
            rounds = max(args.orders // 20, 1)
            sequence = 0
            for _round in range(rounds):
                for name, (cred, fields) in scenarios.items():
                    for _ in range(20):
                        coid = uuid.uuid4().hex
                        # A new size each time: the same order again within 30 s would ask for a person.
                        sequence += 1
                        fields = {**fields, "qty": Decimal(sequence)}
                        call = Call("alpaca_place_order", "place", user.id, STDIO, cred,
                                    OrderRequest(**fields, client_order_id=coid), coid)  # fmt: skip
                        guard.last_quote_seconds = 0.0
                        HOPS[0] = 0
                        started, started_cpu = time.perf_counter(), time.process_time()
                        await guard.before_send(call)
                        elapsed = time.perf_counter() - started
                        hops[name].append(HOPS[0])
                        own[name].append(elapsed - guard.last_quote_seconds)
                        if name != "limits+market":  # the quote's HTTP (and the simulator's CPU) stays out
                            cpu[name].append(time.process_time() - started_cpu)
                        if name == "limits+market":
                            quote.append(guard.last_quote_seconds)
                for method in ("get", "resolve"):
                    if not hasattr(vault, method):  # an older tree without resolve
                        continue
                    for _ in range(10):
                        started = time.perf_counter()
                        await getattr(vault, method)(user.id, "paper-default")
                        reads[f"vault.{method}"].append(time.perf_counter() - started)
                for _ in range(10):
                    coid = uuid.uuid4().hex
                    sequence += 1
                    request = OrderRequest(**{**limit, "qty": Decimal(sequence)}).to_alpaca(coid)
                    HOPS[0] = 0
                    started, started_cpu = time.perf_counter(), time.process_time()
                    await intents.record(
                        user.id, creds["default"].id, "paper-default", coid, request, actor=STDIO,
                        tool="alpaca_place_order", notional_estimate=Decimal(100),
                    )  # fmt: skip
                    baseline.append(time.perf_counter() - started)
                    baseline_cpu.append(time.process_time() - started_cpu)
                    hops["intent only"].append(HOPS[0])
        await db.dispose()
    print(f"guard.before_send, SQLite, {rounds * 20} orders per scenario, alternating rounds")
    print(f"{'scenario':<16} {'p50 ms':>8} {'p90 ms':>8} {'mean ms':>8} {'CPU p50':>8} {'hops':>5}")
    for name, samples in own.items():
        spent = f"{p(cpu[name], 0.5):8.3f}" if cpu[name] else f"{'-':>8}"
        print(
            f"{name:<16} {p(samples, 0.5):8.3f} {p(samples, 0.9):8.3f} {statistics.mean(samples) * 1000:8.3f} "
            f"{spent} {statistics.median(hops[name]):5.0f}"
        )
    base, base_cpu = p(baseline, 0.5), p(baseline_cpu, 0.5)
    print(f"{'intent only':<16} {base:8.3f} {p(baseline, 0.9):8.3f} {statistics.mean(baseline) * 1000:8.3f} "
          f"{base_cpu:8.3f} {statistics.median(hops['intent only']):5.0f}"
          "   (OrderIntents.record: the intent and its event, written with or without the guard)")  # fmt: skip
    for name, samples in own.items():
        spent = f", CPU p50 {p(cpu[name], 0.5) - base_cpu:.3f} ms" if cpu[name] else ""
        print(f"added by the guard ({name}): p50 {p(samples, 0.5) - base:.3f} ms{spent}")
    for name, samples in reads.items():
        if samples:
            print(f"{name:<16} {p(samples, 0.5):8.3f} {p(samples, 0.9):8.3f} {statistics.mean(samples) * 1000:8.3f}"
                  "   (the gate's credential read before its hooks)")  # fmt: skip
    print(f"{'quote fetch':<16} {p(quote, 0.5):8.3f} {p(quote, 0.9):8.3f} {statistics.mean(quote) * 1000:8.3f}"
          "   (limits+market only; excluded from the row above)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
