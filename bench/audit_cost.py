"""What the audit trail costs.

    python bench/audit_cost.py [--events 2000] [--calls 1000] [--rounds 5] [--clients 32] [--calls-per-client 100]
                               [--http-rounds 3] [--skip-http] [--skip-postgres]

1. One audit write (``AuditLog.append``, a fresh event on one user's chain), p50/p99, on an SQLite
   file (the inline path the server uses) and on PostgreSQL (embedded cluster, or
   ALPACA_VAULT_BENCH_POSTGRES_URL).
2. alpaca_get_account in-process (the SDK's Client, the simulator on loopback, SQLite), with the
   audit hooks and without them, taking turns in short rounds; also the event loop thread's CPU
   time per call and the median of the rounds' paired differences (steadier on a shared machine).
   Target: at most 0.3 ms p50 added. bench/audit_phases.py splits the same calls by the gate's steps.
3. HTTP throughput (calls/s) with N concurrent clients against a real `alpaca-vault serve
   --transport http` subprocess, with and without the audit hooks, after one unmeasured warm-up run
   against each; rounds taking turns. Target: at most 10% less.

"Without" is measured by this script removing the hooks in its own process (bench/_no_audit.py
for the subprocess): the server itself has no switch to turn auditing off.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._postgres import postgres_server

BIN = Path(sys.executable).parent
MODES = ("with audit", "without audit")


def p50_p99(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def fmt(samples: list[float]) -> str:
    p50, p99 = p50_p99(samples)
    return f"p50 {p50 * 1000:7.3f} ms   p99 {p99 * 1000:7.3f} ms   (n={len(samples)})"


async def audit_writes(url: str, events: int) -> list[float]:
    from alpaca_vault.audit import AuditLog, ChainKeys
    from alpaca_vault.audit.chain import STDIO
    from alpaca_vault.db import Database
    from alpaca_vault.db.migrate import upgrade_database
    from alpaca_vault.vault import CredentialService, KeyRing, generate_key

    db = Database.create(url)
    await upgrade_database(db)
    keyring = KeyRing.from_string(generate_key())
    user = await CredentialService(db, keyring).ensure_user("bench")
    log = AuditLog(db, ChainKeys.from_keyring(keyring))
    samples = []
    try:
        for i in range(events + 50):
            start = time.perf_counter()
            await log.append(
                user.id,
                "credential.unseal",
                STDIO,
                credential_id=user.id,
                credential_name="paper-1",
                tool="alpaca_get_account",
            )
            if i >= 50:  # warm-up: connections, compiled statements
                samples.append(time.perf_counter() - start)
        report = await log.as_owner().verify(user.id)
        assert report.ok and report.events == events + 50, report
    finally:
        log.close()
        await db.dispose()
    return samples


async def in_process_clients(stack: AsyncExitStack, sim_url: str, tmp: Path) -> dict[str, Any]:
    """Two in-process servers on SQLite files of their own, one with the audit hooks and one without,
    each with a stored paper credential on the simulator; their connected SDK Clients by mode."""
    import httpx2
    from mcp import Client
    from pydantic import SecretStr
    from tests.fixtures.mcp_server import make_settings

    from alpaca_vault.db import Database
    from alpaca_vault.server.app import build_server
    from alpaca_vault.tools import audit_hooks
    from alpaca_vault.vault import CredentialService, KeyRing

    account = httpx2.post(f"{sim_url}/_simulator/accounts", json={"cash": "100000"}).json()
    clients: dict[str, Any] = {}
    for mode in MODES:
        # The request budget raised: at the default 200 per minute the calls would be paced by the
        # budget (one per 0.3 s once its burst is spent), not measured.
        settings = make_settings(tmp / mode.replace(" ", "-"), sim_url, rate_limit_per_minute=10_000)
        server = build_server(settings)
        original = audit_hooks.AuditHooks.install
        if mode == "without audit":  # bench only: this server's runtime opens without the hooks
            audit_hooks.AuditHooks.install = lambda self, hooks: None  # type: ignore[method-assign]
        try:
            client = await stack.enter_async_context(Client(server))
            await client.call_tool("list_credentials", {})  # opens the vault (and hooks)
        finally:
            audit_hooks.AuditHooks.install = original  # type: ignore[method-assign]
        db = Database.create(settings.effective_database_url)
        assert settings.encryption_keys is not None
        keyring = KeyRing.from_string(settings.encryption_keys.get_secret_value())
        service = CredentialService(db, keyring)
        owner = await service.ensure_user(settings.user)
        await service.store(
            owner.id, "paper-1", "paper", SecretStr(account["api_key"]), SecretStr(account["secret_key"])
        )
        await db.dispose()
        clients[mode] = client
    return clients


def round_order(round_number: int) -> list[str]:
    """Short blocks, in turns, the first one of each round alternating: the shared VM's speed drifts,
    and a long block of one mode would measure the drift."""
    return list(MODES) if round_number % 2 == 0 else list(reversed(MODES))


async def in_process(
    calls: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], list[float]]:
    """Per mode: each call's wall time and the event loop thread's CPU time; and, per round, the
    difference of the two modes' p50 (a round is one short block of each, so both see the same load)."""
    from alpaca_vault.simulator import SimulatorConfig, create_app, serve_in_thread

    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    paired: list[float] = []
    with serve_in_thread(create_app(SimulatorConfig())) as sim_url, tempfile.TemporaryDirectory() as tmp:
        async with AsyncExitStack() as stack:
            clients = await in_process_clients(stack, sim_url, Path(tmp))
            block = max(1, calls // rounds)
            for round_number in range(rounds):
                medians: dict[str, float] = {}
                for mode in round_order(round_number):
                    client = clients[mode]
                    warm_up = 20 if round_number == 0 else 3
                    block_samples = []
                    for i in range(block + warm_up):
                        cpu_start, start = time.thread_time(), time.perf_counter()
                        result = await client.call_tool("alpaca_get_account", {})
                        elapsed, cpu_time = time.perf_counter() - start, time.thread_time() - cpu_start
                        if result.is_error:
                            raise RuntimeError(result.content[0].text[:300])
                        if i >= warm_up:
                            block_samples.append(elapsed)
                            cpu[mode].append(cpu_time)
                    samples[mode] += block_samples
                    medians[mode] = statistics.median(block_samples)
                paired.append(medians["with audit"] - medians["without audit"])
    return samples, cpu, paired


async def http_throughput(args: argparse.Namespace) -> dict[str, list[float]]:
    """calls/s of N concurrent HTTP clients, with and without the audit hooks, taking turns."""
    from bench.tool_latency import Bench, free_port, wait_for_port

    bench = Bench(args)
    rates: dict[str, list[float]] = {"with audit": [], "without audit": []}
    try:
        await bench.setup()
        urls = {"with audit": bench.start_http()}
        port = free_port()
        bench.processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).parent / "_no_audit.py"),
                    "serve",
                    "--transport",
                    "http",
                    "--port",
                    str(port),
                ],
                env=bench.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for_port(port)
        urls["without audit"] = f"http://127.0.0.1:{port}/mcp"
        # One unmeasured run against each server first: its first calls per user do one-off work (the
        # token's name, the first event of each chain under the write lock, last-use writes), which
        # the in-process part leaves out as warm-up too. Then the rounds measure the steady state.
        for url in urls.values():
            await bench.load(url)
        for _ in range(args.http_rounds):
            for mode, url in urls.items():
                total, errors, elapsed = await bench.load(url)
                if errors:
                    raise RuntimeError(f"{errors} errors in the {mode} load run")
                rates[mode].append(total / elapsed)
    finally:
        bench.close()
    return rates


async def main(args: argparse.Namespace) -> None:
    print("== 1. one audit write ==")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await audit_writes(f"sqlite+aiosqlite:///{tmp}/bench.db", args.events)
        print(f"SQLite      {fmt(sqlite)}")
    if not args.skip_postgres:
        with postgres_server() as server_url:
            import asyncpg

            name = f"av_bench_{uuid.uuid4().hex[:8]}"
            conn = await asyncpg.connect(server_url.replace("+asyncpg", ""))
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()
            from sqlalchemy import make_url

            pg = await audit_writes(
                make_url(server_url).set(database=name).render_as_string(False), args.events
            )
            print(f"PostgreSQL  {fmt(pg)}")
    print("== 2. alpaca_get_account in-process (SQLite) ==")
    samples, cpu, paired = await in_process(args.calls, args.rounds)
    for mode, values in samples.items():
        print(f"{mode:14s}{fmt(values)}   loop thread CPU p50 {statistics.median(cpu[mode]) * 1000:.3f} ms")
    added = p50_p99(samples["with audit"])[0] - p50_p99(samples["without audit"])[0]
    added_cpu = statistics.median(cpu["with audit"]) - statistics.median(cpu["without audit"])
    print(
        f"added p50: {added * 1000:.3f} ms (target <= 0.3 ms); median of the {len(paired)} rounds' "
        f"differences {statistics.median(paired) * 1000:.3f} ms; loop thread CPU {added_cpu * 1000:.3f} ms"
    )
    if not args.skip_http:
        print(
            f"== 3. HTTP throughput, {args.clients} clients x {args.calls_per_client} alpaca_get_account =="
        )
        rates = await http_throughput(args)
        for mode, values in rates.items():
            print(
                f"{mode:14s}median {statistics.median(values):7.0f} calls/s  (rounds: "
                + ", ".join(f"{v:.0f}" for v in values)
                + ")"
            )
        change = statistics.median(rates["with audit"]) / statistics.median(rates["without audit"]) - 1
        print(f"throughput change with audit: {change * 100:+.1f}% (target >= -10%)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--calls-per-client", type=int, default=100)
    parser.add_argument("--http-rounds", type=int, default=3)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    asyncio.run(main(parser.parse_args()))
