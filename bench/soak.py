"""Soak: orders through the MCP tools over HTTP from concurrent clients while faults are injected.

    python bench/soak.py [--orders 1000] [--clients 4] [--backend sqlite|postgres|both]

The real HTTP server (`serve --transport http`'s app under uvicorn on loopback), bearer tokens for
two users (two clients each, so one user's audit chain takes concurrent appends), the simulator
on loopback. While the clients place their orders, a chaos task keeps injecting faults at random
moments: lost responses (504, dropped connection), answers held past the client's timeout, 5xx,
429, latency, and failing look-ups. Afterwards the reconciler runs once and the script reports,
per backend: intents, orders at the simulator, duplicates (must be 0), unresolved intents after
reconcile (must be 0), intents whose state disagrees with the broker (must be 0), the audit
verify result, and the elapsed time. ``run_soak`` is also what tests/audit/test_soak.py runs
with a few dozen orders.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SYMBOLS = ("AAPL", "MSFT", "SPY", "TSLA", "NVDA")
# (weight, fault): each injected once (count) at a random moment.
CHAOS: list[tuple[int, dict[str, Any]]] = [
    (3, {"match": "POST /v2/orders", "lost_response": "504", "count": 1}),
    (2, {"match": "POST /v2/orders", "lost_response": "drop", "count": 1}),
    (
        1,
        {"match": "POST /v2/orders", "lost_response": "hang", "latency_ms": 1500, "count": 1},
    ),  # past the timeout
    (3, {"match": "POST /v2/orders", "status": 500, "count": 1}),
    (2, {"match": "POST /v2/orders", "status": 429, "retry_after": 0, "count": 1}),
    (2, {"match": "* /v2/*", "latency_ms": 150, "count": 3}),
    (1, {"match": "GET /v2/orders:by_client_order_id", "status": 503, "count": 3}),
]
# Always on: a few percent of order POSTs and look-ups answer 5xx at random.
STEADY: list[dict[str, Any]] = [
    {"match": "POST /v2/orders", "status": 503, "rate": 0.03},
    {"match": "GET /v2/orders:by_client_order_id", "status": 500, "rate": 0.03},
]


@dataclass
class SoakReport:
    backend: str
    orders_attempted: int
    tool_errors: int
    intents: int
    orders_at_simulator: int
    duplicates: int
    unresolved_after_reconcile: int
    disagreements: int
    verify_ok: bool
    verify_detail: str
    elapsed: float
    faults_injected: int

    def lines(self) -> list[str]:
        return [
            f"[{self.backend}] orders attempted {self.orders_attempted}, tool errors {self.tool_errors}, "
            f"faults injected {self.faults_injected}",
            f"[{self.backend}] intents {self.intents}, orders at simulator {self.orders_at_simulator}, "
            f"duplicates {self.duplicates}, unresolved after reconcile {self.unresolved_after_reconcile}, "
            f"state disagreements {self.disagreements}",
            f"[{self.backend}] audit verify: {'OK' if self.verify_ok else 'FAILED'} ({self.verify_detail}); "
            f"elapsed {self.elapsed:.1f} s",
        ]


async def run_soak(
    database_url: str, simulator: Any, *, backend: str, orders: int = 100, clients: int = 4, seed: int = 13
) -> SoakReport:
    """``simulator``: a handle with base_url, new_account, set_fault, clear_faults, orders (tests' SimulatorHandle)."""
    from pydantic import SecretStr

    from alpaca_vault.accounts import AccountAdmin
    from alpaca_vault.db import Database
    from alpaca_vault.db.migrate import upgrade_database
    from alpaca_vault.guard.store import PolicyStore
    from alpaca_vault.vault import CredentialService, KeyRing, generate_key

    rng = random.Random(seed)
    keys = generate_key()
    db = Database.create(database_url)
    await upgrade_database(db)
    keyring = KeyRing.from_string(keys)
    admin, vault = AccountAdmin(db), CredentialService(db, keyring)
    users: dict[str, tuple[uuid.UUID, str, Any]] = {}
    for name in ("soak-a", "soak-b"):
        user = await admin.add_user(name)
        token = (await admin.create_token(name, name=f"{name}-token")).token.get_secret_value()
        account = simulator.new_account(cash="100000000")
        await vault.store(
            user.id, "paper", "paper", SecretStr(account.api_key), SecretStr(account.secret_key)
        )
        # The soak repeats small orders on purpose; the owner turns the guard's duplicate window off
        # (it would ask a person, and this client has none to ask): faults are what is under test.
        await PolicyStore(db).update(user.id, "paper", {"duplicate_window_seconds": 0})
        users[name] = (user.id, token, account)

    simulator.clear_faults()
    try:
        return await _soak(
            database_url, simulator, db, keys, keyring, vault, users, rng, backend, orders, clients
        )
    finally:
        simulator.clear_faults()  # the simulator may be shared (the test suite's): leave it clean
        await db.dispose()


async def _soak(
    database_url: str,
    simulator: Any,
    db: Any,
    keys: str,
    keyring: Any,
    vault: Any,
    users: dict[str, tuple[uuid.UUID, str, Any]],
    rng: random.Random,
    backend: str,
    orders: int,
    clients: int,
) -> SoakReport:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    from alpaca_vault.audit import AuditLog, ChainKeys
    from alpaca_vault.broker.client import AlpacaClient
    from alpaca_vault.guard.order_intents import OrderIntents
    from alpaca_vault.guard.reconciler import Reconciler
    from alpaca_vault.server.runner import serve_http_in_thread
    from alpaca_vault.server.settings import Settings

    for fault in STEADY:
        simulator.set_fault(**fault)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            database_url=database_url,
            encryption_keys=keys,
            paper_url=simulator.base_url,
            live_url=simulator.base_url,
            data_url=simulator.base_url,
            http_timeout=1.0,
            log_level="ERROR",
        )
        errors = 0
        injected = 0
        done = asyncio.Event()

        async def chaos() -> None:
            nonlocal injected
            weights = [w for w, _ in CHAOS]
            while True:
                # Until the next fault, or the end of the orders (at once: the run does not wait out a pause).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), rng.uniform(0.1, 0.4))
                if done.is_set():
                    return
                [(_, fault)] = rng.choices(CHAOS, weights=weights)
                await asyncio.to_thread(simulator.set_fault, **fault)
                injected += 1

        async def client(index: int, url: str, count: int) -> None:
            nonlocal errors
            name = ("soak-a", "soak-b")[index % 2]
            _, token, _ = users[name]
            async with (
                create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
                Client(streamable_http_client(url, http_client=http), raise_exceptions=False) as session,
            ):
                for i in range(count):
                    result = await session.call_tool(
                        "alpaca_place_order",
                        {
                            "symbol": rng.choice(SYMBOLS),
                            "side": "buy",
                            "qty": rng.randint(1, 5),
                            "client_order_id": f"soak-{index}-{i}",
                        },
                    )
                    errors += bool(result.is_error)

        start = time.perf_counter()
        with serve_http_in_thread(settings) as url:
            chaos_task = asyncio.create_task(chaos())
            share = [orders // clients + (1 if i < orders % clients else 0) for i in range(clients)]
            try:
                await asyncio.gather(*(client(i, url, share[i]) for i in range(clients)))
            finally:
                done.set()
                await chaos_task
                simulator.clear_faults()
        audit = AuditLog(db, ChainKeys.from_keyring(keyring))
        intents = OrderIntents(db, audit)
        async with AlpacaClient(
            paper_url=simulator.base_url,
            live_url=simulator.base_url,
            data_url=simulator.base_url,
            timeout=5.0,
        ) as broker:
            reconciler = Reconciler(intents, vault, broker, not_found_after=timedelta(0))
            for user_id, _, _ in users.values():
                await reconciler.run_once(user_id)
        elapsed = time.perf_counter() - start

        all_intents = []
        at_broker: list[dict[str, Any]] = []
        for user_id, _, account in users.values():
            all_intents += await intents.list(user_id)
            at_broker += simulator.orders(account.api_key)
        report = await audit.as_owner().verify()
        audit.close()

    per_coid = collections.Counter(o["client_order_id"] for o in at_broker)
    duplicates = sum(n - 1 for n in per_coid.values() if n > 1)
    by_coid = {o["client_order_id"]: o for o in at_broker}
    unresolved = sum(i.state in ("pending", "unknown") for i in all_intents)
    disagreements = 0
    for intent in all_intents:
        order = by_coid.get(intent.client_order_id)
        if intent.state in ("accepted", "reconciled"):
            disagreements += order is None or order["id"] != intent.alpaca_order_id
        elif intent.state == "rejected":
            disagreements += order is not None
    disagreements += len(set(by_coid) - {i.client_order_id for i in all_intents})  # orders nobody recorded
    return SoakReport(
        backend=backend,
        orders_attempted=orders,
        tool_errors=errors,
        intents=len(all_intents),
        orders_at_simulator=len(at_broker),
        duplicates=duplicates,
        unresolved_after_reconcile=unresolved,
        disagreements=disagreements,
        verify_ok=report.ok,
        verify_detail=f"{report.events} events, {report.users} users"
        + ("" if report.ok else f"; {report.problems[0]}"),
        elapsed=elapsed,
        faults_injected=injected,
    )


async def main(args: argparse.Namespace) -> None:
    from tests.fixtures.simulator import SimulatorHandle

    from alpaca_vault.simulator import SimulatorConfig, create_app, serve_in_thread

    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    with serve_in_thread(create_app(SimulatorConfig())) as sim_url:
        simulator = SimulatorHandle(sim_url)
        for backend in backends:
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    report = await run_soak(
                        f"sqlite+aiosqlite:///{tmp}/soak.db",
                        simulator,
                        backend=backend,
                        orders=args.orders,
                        clients=args.clients,
                    )
            else:
                import asyncpg
                from bench._postgres import postgres_server
                from sqlalchemy import make_url

                with postgres_server() as server_url:
                    name = f"av_soak_{uuid.uuid4().hex[:8]}"
                    conn = await asyncpg.connect(server_url.replace("+asyncpg", ""))
                    await conn.execute(f'CREATE DATABASE "{name}"')
                    await conn.close()
                    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
                    report = await run_soak(
                        url, simulator, backend=backend, orders=args.orders, clients=args.clients
                    )
            for line in report.lines():
                print(line, flush=True)
        simulator.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    asyncio.run(main(parser.parse_args()))
