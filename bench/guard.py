"""Guard benchmark: the latency the trading guard adds to alpaca_place_order, in-process.

    .venv/bin/python bench/guard.py [--orders 300]

Measures ``Guard.before_send`` (the gate's before-send hook for an order) on an SQLite vault
against the simulator on loopback, in alternating rounds:

* ``default``: a new paper credential's policy (no dollar rules: no quote is fetched);
* ``limits``: every limit set, a limit order (priced by its limit: no quote);
* ``limits+market``: every limit set, a market order: the latest quote is fetched to estimate its
  notional; that fetch is reported apart and subtracted from the guard's own time.

Each order's intent is inserted as in the server (so the counters grow as they would in a day).
Target: the guard's own time at most 1 ms p50 in-process, quote fetch excluded.

Each row gives wall time and CPU time (process_time: this process's threads, aiosqlite's included).
On a shared machine the wall time carries other people's load; the CPU time is what the guard costs.

Also measured: the gate's credential read before its hooks (``vault.get``: an ORM session, as the gate
did until #14's latency work; ``vault.resolve``: one Core read, inline on SQLite, what it does now).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pydantic import SecretStr

from alpaca_vault.audit.chain import STDIO
from alpaca_vault.broker.client import AlpacaClient
from alpaca_vault.broker.models import OrderRequest
from alpaca_vault.db import Database
from alpaca_vault.db.migrate import upgrade_database
from alpaca_vault.db.models import OrderIntent
from alpaca_vault.guard.wiring import build_guard
from alpaca_vault.simulator import SimulatorConfig, create_app, serve_in_thread
from alpaca_vault.vault import CredentialService, KeyRing, generate_key


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
    with serve_in_thread(create_app(SimulatorConfig())) as sim_url:
        db = Database.create(f"sqlite+aiosqlite:///{scratch / 'vault.db'}")
        await upgrade_database(db)
        vault = CredentialService(db, KeyRing.load(generate_key(), scratch))
        user = await vault.ensure_user("bench")
        creds: dict[str, Cred] = {}
        for name in ("default", "limits"):
            # One simulator account per credential: the vault refuses the same key pair twice.
            pair = httpx2.post(f"{sim_url}/_simulator/accounts", json={"cash": "1000000000"}).json()
            info = await vault.store(
                user.id, f"paper-{name}", "paper", SecretStr(pair["api_key"]), SecretStr(pair["secret_key"])
            )
            creds[name] = Cred(info.id, info.name, info.environment)
        async with AlpacaClient(paper_url=sim_url, live_url=sim_url, data_url=sim_url) as broker:
            guard = build_guard(db, broker, vault)
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
            reads: dict[str, list[float]] = {"vault.get": [], "vault.resolve": []}
            # Without the guard the durable intent is still written: one transaction with one insert.
            baseline: list[float] = []
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
                        started, started_cpu = time.perf_counter(), time.process_time()
                        await guard.before_send(call)
                        elapsed = time.perf_counter() - started
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
                coid = uuid.uuid4().hex
                started = time.perf_counter()
                async with db.session(user.id) as session:
                    session.add(
                        OrderIntent(
                            user_id=user.id, credential_id=creds["default"].id, client_order_id=coid,
                            request=OrderRequest(**limit).to_alpaca(coid), state="pending",
                            notional_estimate=Decimal(100),
                        )
                    )  # fmt: skip
                baseline.append(time.perf_counter() - started)
        await db.dispose()
    print(f"guard.before_send, SQLite, {rounds * 20} orders per scenario, alternating rounds")
    print(f"{'scenario':<16} {'p50 ms':>8} {'p90 ms':>8} {'mean ms':>8} {'CPU p50':>8}")
    for name, samples in own.items():
        spent = f"{p(cpu[name], 0.5):8.3f}" if cpu[name] else f"{'-':>8}"
        print(
            f"{name:<16} {p(samples, 0.5):8.3f} {p(samples, 0.9):8.3f} {statistics.mean(samples) * 1000:8.3f} "
            f"{spent}"
        )
    base = p(baseline, 0.5)
    print(f"{'intent only':<16} {base:8.3f} {p(baseline, 0.9):8.3f} {statistics.mean(baseline) * 1000:8.3f}"
          "   (the durable intent's own transaction, written with or without the guard)")  # fmt: skip
    for name, samples in own.items():
        print(f"added by the guard ({name}): p50 {p(samples, 0.5) - base:.3f} ms")
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
