"""Fairness under abuse (issue #10): one user floods the HTTP transport, another works normally.

`alpaca-vault serve --transport http` (stateful, default limits, its own process) on loopback with
an embedded SQLite vault. For DURATION seconds the *attacker* runs CONCURRENCY loops that open
sessions (initialize) and send requests on them as fast as the server answers; meanwhile the
*victim*, another user, makes CALLS ordinary tool calls (``list_credentials`` and
``alpaca_get_account`` against the simulator) through the SDK's Client, paced over the window.
Printed: the attacker's answers by HTTP status, and the victim's failures and p50/p99 latency,
with a baseline of the same victim calls without the attacker.

    .venv/bin/python bench/fairness.py [--duration 30] [--calls 200] [--concurrency 16]

``run_fairness`` is also used by tests/auth/test_fairness_load.py with a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "flood", "version": "0"},
    },
}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@dataclass
class FairnessResult:
    attacker_statuses: Counter[int] = field(default_factory=Counter)
    attacker_errors: int = 0
    victim_latencies: list[float] = field(default_factory=list)
    victim_failures: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def flood(url: str, token: str, until: float, result: FairnessResult) -> None:
    """One attacker loop: open a session, use it, open another, as fast as the server answers."""
    headers = dict(ACCEPT, Authorization=f"Bearer {token}")
    async with httpx2.AsyncClient(timeout=30) as http:
        while time.monotonic() < until:
            try:
                opened = await http.post(url, json=INITIALIZE, headers=headers)
                result.attacker_statuses[opened.status_code] += 1
                session = opened.headers.get("mcp-session-id")
                if session:
                    used = await http.post(
                        url,
                        json=TOOLS_LIST,
                        headers=dict(
                            headers, **{"Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-06-18"}
                        ),
                    )
                    result.attacker_statuses[used.status_code] += 1
            except httpx2.HTTPError:
                result.attacker_errors += 1


async def victim(url: str, token: str, calls: int, pace: float, result: FairnessResult) -> None:
    """The well-behaved user: ``calls`` tool calls, one every ``pace`` seconds, through the SDK's Client."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(url, http_client=http), raise_exceptions=False) as client,
    ):
        for n in range(calls):
            tool = "alpaca_get_account" if n % 2 else "list_credentials"
            started = time.perf_counter()
            try:
                answer = await client.call_tool(tool, {})
                if answer.is_error:
                    result.victim_failures.append(str(answer.content[0])[:300])
            except Exception as exc:
                result.victim_failures.append(f"{type(exc).__name__}: {exc}"[:300])
            result.victim_latencies.append(time.perf_counter() - started)
            await asyncio.sleep(max(0.0, pace - (time.perf_counter() - started)))


async def run_fairness(
    url: str,
    attacker_token: str,
    victim_token: str,
    *,
    duration: float,
    calls: int,
    concurrency: int,
    attack: bool = True,
) -> FairnessResult:
    result = FairnessResult()
    until = time.monotonic() + duration
    tasks = [flood(url, attacker_token, until, result) for _ in range(concurrency)] if attack else []
    await asyncio.gather(victim(url, victim_token, calls, duration / calls, result), *tasks)
    return result


@contextmanager
def server_process(env: dict[str, str]) -> Iterator[str]:
    """`alpaca-vault serve --transport http` as its own process; yields the /mcp URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_VAULT_")} | env
    command = [
        sys.executable,
        "-m",
        "alpaca_vault.server.cli",
        "serve",
        "--transport",
        "http",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit("the server exited during start-up")
            try:
                httpx2.get(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp", timeout=1)
                break
            except httpx2.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=20)


def report(label: str, result: FairnessResult) -> None:
    lat = result.victim_latencies
    print(
        f"{label:9} victim: {len(lat)} calls, {len(result.victim_failures)} failed, "
        f"p50 {percentile(lat, 0.5) * 1e3:7.1f} ms  p99 {percentile(lat, 0.99) * 1e3:7.1f} ms  "
        f"max {max(lat, default=float('nan')) * 1e3:7.1f} ms"
    )
    if result.attacker_statuses or result.attacker_errors:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(result.attacker_statuses.items()))
        print(f"{'':9} attacker answers by status: {statuses}; transport errors: {result.attacker_errors}")
    for failure in result.victim_failures[:3]:
        print(f"{'':9} victim failure: {failure}")


async def main(args: argparse.Namespace) -> None:
    from pydantic import SecretStr

    from alpaca_vault.accounts import AccountAdmin
    from alpaca_vault.db import Database
    from alpaca_vault.db.migrate import upgrade
    from alpaca_vault.simulator import AccountSpec, SimulatorConfig, create_app, serve_in_thread
    from alpaca_vault.vault.credentials import CredentialService
    from alpaca_vault.vault.keyring import KeyRing, generate_key

    work = Path(tempfile.mkdtemp(prefix="av-fairness-"))
    url_db = f"sqlite+aiosqlite:///{work / 'vault.db'}"
    key = generate_key()
    account = AccountSpec(
        api_key="PKFAIRNESS0000000001", secret_key="fairness-secret-" + "y" * 24, cash=Decimal("1e6")
    )
    await upgrade(url_db)
    db = Database.create(url_db)
    try:
        admin = AccountAdmin(db)
        tokens = {}
        for name in ("mallory", "alice"):
            user = await admin.add_user(name)
            tokens[name] = (await admin.create_token(name)).token.get_secret_value()
            if name == "alice":
                vault = CredentialService(db, KeyRing.load(key, work))
                await vault.store(
                    user.id, "paper", "paper", SecretStr(account.api_key), SecretStr(account.secret_key)
                )
    finally:
        await db.dispose()
    with (
        serve_in_thread(create_app(SimulatorConfig(accounts=[account]))) as simulator_url,
        server_process(
            {
                "ALPACA_VAULT_DATA_DIR": str(work / "data"),
                "ALPACA_VAULT_DATABASE_URL": url_db,
                "ALPACA_VAULT_ENCRYPTION_KEYS": key,
                "ALPACA_VAULT_PAPER_URL": simulator_url,
                "ALPACA_VAULT_LIVE_URL": simulator_url,
                "ALPACA_VAULT_DATA_URL": simulator_url,
                "ALPACA_VAULT_LOG_LEVEL": "ERROR",
            }
        ) as url,
    ):
        baseline_calls = max(20, args.calls // 4)
        baseline = await run_fairness(
            url,
            tokens["mallory"],
            tokens["alice"],
            duration=baseline_calls * 0.02,
            calls=baseline_calls,
            concurrency=0,
            attack=False,
        )
        report("baseline", baseline)
        started = time.perf_counter()
        attacked = await run_fairness(
            url,
            tokens["mallory"],
            tokens["alice"],
            duration=args.duration,
            calls=args.calls,
            concurrency=args.concurrency,
        )
        print(
            f"{'':9} attack window {time.perf_counter() - started:.1f} s, {args.concurrency} attacker loops"
        )
        report("attacked", attacked)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    asyncio.run(main(parser.parse_args()))
