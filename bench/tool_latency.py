"""Tool latency, cold start and HTTP load, against the simulator on loopback.

    python bench/tool_latency.py [--calls 1000] [--rounds 5] [--clients 32] [--calls-per-client 500] [--no-peer]

Measures, in one run:
1. alpaca_get_account latency (p50/p99): the raw broker call, the same call as an MCP tool
   in-process, over stdio (a real `alpaca-vault serve` subprocess) and over Streamable HTTP
   (a real `alpaca-vault serve --transport http` subprocess with a bearer token), and the SDK
   floor (bench/sdk_floor_server.py: the same tool and result on the bare SDK, no vault, no
   middleware) to tell the SDK's share of the overhead from ours. The five take
   turns in blocks (raw, in-process, stdio, HTTP, raw, ...; --rounds), each block in steady
   state: on a small shared VM the speed of everything drifts by up to 2x over minutes, and
   measuring one mode after the other would put that drift into the overhead;
2. cold start: spawning `alpaca-vault serve` until it answers tools/list over stdio, next to
   the peer `alpaca-mcp-server` 2.4 (installed into bench/.peer-venv on first use);
3. load: N concurrent HTTP clients, each its own user, token and credential, M calls each.

Everything runs on 127.0.0.1; the simulator and the servers are separate processes so the
load generator does not share an interpreter with what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from alpaca_vault.broker.client import AlpacaClient, AlpacaKeys
from alpaca_vault.vault.keyring import generate_key

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / "bench" / ".peer-venv"
PEER_REQUIREMENT = "alpaca-mcp-server==2.4.*"
SIM_KEY, SIM_SECRET = "PKBENCH0000000000001", "bench-secret-0000000000000000000000000000"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {p50 * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms   (n={len(ordered)})"


async def in_rounds(
    n: int, rounds: int, calls: dict[str, Callable[[], Awaitable[Any]]]
) -> dict[str, list[float]]:
    """Time ``n`` calls of each, in ``rounds`` blocks taking turns (A B C A B C ...); seconds per call."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    block = max(1, n // rounds)
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(min(20, block)):  # back in steady state: warm connections and caches
                await call()
            for _ in range(block):
                start = time.perf_counter()
                await call()
                samples[name].append(time.perf_counter() - start)
    return samples


def check(result: Any) -> None:
    if result.is_error:
        raise RuntimeError(f"tool error: {result.content[0].text[:300]}")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="alpaca-vault-bench-"))
        self.sim_port = free_port()
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_VAULT_")}
        self.env.update(
            ALPACA_VAULT_DATA_DIR=str(self.tmp / "data"),
            ALPACA_VAULT_ENCRYPTION_KEYS=generate_key(),
            ALPACA_VAULT_PAPER_URL=self.sim_url,
            ALPACA_VAULT_LIVE_URL=self.sim_url,
            ALPACA_VAULT_DATA_URL=self.sim_url,
            ALPACA_VAULT_LOG_LEVEL="WARNING",
            ALPACA_VAULT_RATE_LIMIT_PER_MINUTE="10000",
        )
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, *argv: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [str(BIN / "alpaca-vault"), *argv],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ setup

    async def setup(self) -> None:
        self.spawn(
            "simulator", "--port", str(self.sim_port), "--account", f"{SIM_KEY}:{SIM_SECRET}:1000000000"
        )
        wait_for_port(self.sim_port)
        from alpaca_vault.accounts import AccountAdmin
        from alpaca_vault.db.engine import Database
        from alpaca_vault.db.migrate import upgrade
        from alpaca_vault.vault.credentials import CredentialService
        from alpaca_vault.vault.keyring import KeyRing

        data_dir = self.tmp / "data"
        data_dir.mkdir(mode=0o700)
        url = f"sqlite+aiosqlite:///{data_dir / 'vault.db'}"
        await upgrade(url)
        database = Database.create(url)
        vault = CredentialService(database, KeyRing.load(self.env["ALPACA_VAULT_ENCRYPTION_KEYS"], data_dir))
        admin = AccountAdmin(database)
        local = await vault.ensure_user("local")
        await vault.store(local.id, "bench", "paper", SecretStr(SIM_KEY), SecretStr(SIM_SECRET))
        self.local_token = (await admin.create_token("local", name="bench")).token.get_secret_value()
        # One user, token, simulator account and credential per load client.
        self.load_tokens: list[str] = []
        async with httpx2.AsyncClient(base_url=self.sim_url) as sim:
            for i in range(self.args.clients):
                account = (await sim.post("/_simulator/accounts", json={"cash": "1000000000"})).json()
                user = await admin.add_user(f"load{i}")
                await vault.store(
                    user.id, "paper", "paper", SecretStr(account["api_key"]), SecretStr(account["secret_key"])
                )
                self.load_tokens.append((await admin.create_token(user.name)).token.get_secret_value())
        await database.dispose()

    # ------------------------------------------------------------------ measurements

    async def latency(self, http_url: str) -> dict[str, list[float]]:
        """alpaca_get_account five ways, taking turns: raw broker, in-process, stdio, the SDK floor, HTTP."""
        from alpaca_vault.server.app import build_server
        from alpaca_vault.server.settings import Settings

        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            settings = Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        keys = AlpacaKeys(SecretStr(SIM_KEY), SecretStr(SIM_SECRET), "paper", "bench")
        stdio = StdioServerParameters(command=str(BIN / "alpaca-vault"), args=["serve"], env=self.env)
        floor = StdioServerParameters(
            command=sys.executable,
            args=[str(ROOT / "bench" / "sdk_floor_server.py")],
            env={**self.env, "BENCH_KEY_ID": SIM_KEY, "BENCH_SECRET": SIM_SECRET},
        )
        async with (
            AlpacaClient(
                paper_url=self.sim_url,
                live_url=self.sim_url,
                data_url=self.sim_url,
                rate_limit_per_minute=10_000,
            ) as broker,
            Client(build_server(settings)) as in_process,
            Client(stdio) as over_stdio,
            Client(floor) as sdk_floor,
            self.http_client(http_url, self.local_token) as over_http,
        ):
            return await in_rounds(
                self.args.calls,
                self.args.rounds,
                {
                    "raw broker call": lambda: broker.get_account(keys),
                    "MCP tool, in-process": lambda: self._account(in_process),
                    "MCP tool, stdio": lambda: self._account(over_stdio),
                    "SDK floor, stdio": lambda: self._account(sdk_floor),
                    "MCP tool, HTTP": lambda: self._account(over_http),
                },
            )

    def start_http(self) -> str:
        port = free_port()
        self.spawn("serve", "--transport", "http", "--port", str(port))
        wait_for_port(port)
        return f"http://127.0.0.1:{port}/mcp"

    def http_client(self, url: str, token: str) -> Client:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
        return Client(streamable_http_client(url, http_client=http))

    async def load(self, url: str) -> tuple[int, int, float]:
        errors = 0

        async def one_client(token: str) -> None:
            nonlocal errors
            async with self.http_client(url, token) as client:
                for _ in range(self.args.calls_per_client):
                    try:
                        check(await client.call_tool("alpaca_get_account", {}))
                    except Exception:
                        errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(one_client(token) for token in self.load_tokens))
        elapsed = time.perf_counter() - start
        return self.args.clients * self.args.calls_per_client, errors, elapsed

    @staticmethod
    async def _account(client: Client) -> None:
        check(await client.call_tool("alpaca_get_account", {}))


def cold_start(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    """Seconds from spawning the server to its tools/list answer over stdio."""
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "b", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    ]
    payload = "".join(json.dumps(m) + "\n" for m in messages).encode()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert process.stdin and process.stdout
        process.stdin.write(payload)
        process.stdin.flush()
        while line := process.stdout.readline():
            if json.loads(line).get("id") == 1:
                samples.append(time.perf_counter() - start)
                break
        else:
            raise RuntimeError(f"{command[0]} exited without answering tools/list")
        process.kill()
        process.wait()
    return samples


def peer_command() -> list[str] | None:
    exe = PEER_VENV / "bin" / "alpaca-mcp-server"
    # A venv of its own that bench/tools_economy.py also uses.
    shared = Path("/tmp/peer/bin/alpaca-mcp-server")
    if not exe.exists() and shared.exists():
        return [str(shared)]
    if not exe.exists():
        print(f"Installing the peer ({PEER_REQUIREMENT}) into {PEER_VENV} ...", flush=True)
        venv.create(PEER_VENV, with_pip=True)
        install = subprocess.run(
            [str(PEER_VENV / "bin" / "python"), "-m", "pip", "install", "-q", PEER_REQUIREMENT],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            print(f"  could not install the peer: {install.stderr.strip()[-400:]}")
            return None
    return [str(exe)]


async def main(args: argparse.Namespace) -> None:
    bench = Bench(args)
    try:
        await bench.setup()
        url = bench.start_http()
        print(f"alpaca_get_account latency, {args.calls} calls each, in {args.rounds} rounds taking turns")
        samples = await bench.latency(url)
        for name, values in samples.items():
            print(f"  {name:21s}{percentiles(values)}")
        raw, stdio = samples["raw broker call"], samples["MCP tool, stdio"]
        overhead = statistics.median(stdio) - statistics.median(raw)
        print(f"  tool overhead over the raw call, stdio p50: {overhead * 1000:.2f} ms (target <= 2 ms)")
        floor = statistics.median(samples["SDK floor, stdio"])
        print(
            f"    of which the MCP SDK and the stdio round trip (SDK floor - raw): "
            f"{(floor - statistics.median(raw)) * 1000:.2f} ms; alpaca-vault itself (stdio - SDK floor): "
            f"{(statistics.median(stdio) - floor) * 1000:.2f} ms"
        )

        print(f"\nCold start to a tools/list answer over stdio, median of {args.cold_runs} runs taking turns")
        peer = None if args.no_peer else peer_command()
        peer_env = {**bench.env, "ALPACA_API_KEY": SIM_KEY, "ALPACA_SECRET_KEY": SIM_SECRET}
        ours_command = [str(BIN / "alpaca-vault"), "serve"]
        ours, first, theirs = [], [], []
        for run in range(args.cold_runs):
            # A data directory this server has served from before holds the listing of its last start
            # (server/tool_listing.py); a fresh one does not: its first start builds the tools first.
            fresh = {**bench.env, "ALPACA_VAULT_DATA_DIR": str(bench.tmp / f"fresh-{run}")}
            first += cold_start(ours_command, fresh, 1)
            ours += cold_start(ours_command, bench.env, 1)
            if peer:
                theirs += cold_start(peer, peer_env, 1)
        for label, samples in (("alpaca-vault serve", ours), ("  first start (fresh data dir)", first)):
            runs = ", ".join(f"{s:.2f}" for s in samples)
            print(f"  {label:31s}{statistics.median(samples):.3f} s  (runs: {runs})")
        if theirs:
            runs = ", ".join(f"{s:.2f}" for s in theirs)
            print(f"  {'alpaca-mcp-server 2.4':31s}{statistics.median(theirs):.3f} s  (runs: {runs})")
            ratio = statistics.median(ours) / statistics.median(theirs)
            print(f"  ratio ours/peer: {ratio:.2f} (target <= 0.80); "
                  f"first start: {statistics.median(first) / statistics.median(theirs):.2f}")  # fmt: skip

        print(
            f"\nLoad: {args.clients} concurrent HTTP clients x {args.calls_per_client} alpaca_get_account calls"
        )
        total, errors, elapsed = await bench.load(url)
        print(f"  {total} calls in {elapsed:.1f} s: {total / elapsed:.0f} calls/s, {errors} errors")
    finally:
        bench.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1000, help="calls per mode in the latency measurement")
    parser.add_argument("--rounds", type=int, default=5, help="blocks the latency calls are split into")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients in the load test")
    parser.add_argument("--calls-per-client", type=int, default=500, help="calls each load client makes")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold starts measured per server")
    parser.add_argument("--no-peer", action="store_true", help="skip the alpaca-mcp-server comparison")
    asyncio.run(main(parser.parse_args()))
