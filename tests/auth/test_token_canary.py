"""The token canary: a created token is printed once and then never seen again.

The real `alpaca-vault serve --transport http` and the command that creates the
token run as subprocesses at DEBUG; the other commands run the real typer app
in this process, as tests/cli does (what a command prints and logs is captured
the same way, without a second of imports per command). The token is created,
used for tool calls, presented in refused variants, listed and revoked; then
every byte anyone could see is searched for it: the server's stderr, every CLI
output, every tool result, and the SQLite file with its WAL. Only the creating
command's stdout may hold it, exactly once.

Attack stopped: a bearer token leaking into logs (any level), listings, tool
results or the database, where it would outlive its one showing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from alpaca_vault.accounts import DISPLAY_PREFIX_LENGTH
from alpaca_vault.vault.keyring import generate_key
from tests.cli.conftest import Cli
from tests.fixtures.mcp_server import text_of
from tests.multiuser.harness import connect

CLI = [sys.executable, "-m", "alpaca_vault.server.cli"]


def leaks(token: str, text: str) -> bool:
    """The token, or any 8-character piece of its secret part (beyond the display prefix), in ``text``."""
    core = token[DISPLAY_PREFIX_LENGTH:]
    return token in text or any(core[i : i + 8] in text for i in range(len(core) - 7))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path, simulator: Any) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_VAULT_")}
    values.update(
        ALPACA_VAULT_DATA_DIR=str(tmp_path / "data"),
        ALPACA_VAULT_ENCRYPTION_KEYS=generate_key(),
        ALPACA_VAULT_PAPER_URL=simulator.base_url,
        ALPACA_VAULT_LIVE_URL=simulator.base_url,
        ALPACA_VAULT_DATA_URL=simulator.base_url,
        ALPACA_VAULT_LOG_LEVEL="DEBUG",
        ALPACA_VAULT_ALLOW_SECRETS_IN_ARGUMENTS="true",  # keys as arguments here; tests/console covers the page
    )
    return values


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A command of the real CLI, in this process (stdout, stderr and its DEBUG log captured)."""
    settings = {k: v for k, v in env.items() if k.startswith("ALPACA_VAULT_")}
    return Cli(Path(env["ALPACA_VAULT_DATA_DIR"]), None, env=settings)(*args)


def cli_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def http_server(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path / "server.stderr"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*CLI, "serve", "--transport", "http", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            url = f"http://127.0.0.1:{port}/mcp"
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    httpx2.get(f"http://127.0.0.1:{port}/mcp", timeout=1)  # any answer (a 401) means it is up
                    break
                except httpx2.TransportError:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.1)
            yield url, log
        finally:
            process.terminate()
            process.wait(timeout=20)


async def test_a_token_is_shown_once_and_never_again(
    env: dict[str, str], http_server: tuple[str, Path], tmp_path: Path, simulator: Any
) -> None:
    url, server_log = http_server
    seen: list[str] = []  # everything except the one showing

    added = cli(env, "users", "add", "alice")
    assert added.returncode == 0, added.stderr
    created = cli_process(env, "tokens", "create", "--user", "alice", "--name", "canary", "--expires-in", "7")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("avt_") and len(token) == 47
    assert created.stdout.count(token) == 1
    seen += [added.stdout, added.stderr, created.stderr]
    assert "Authorization: Bearer" in created.stderr  # says how to use it, without repeating it

    account = simulator.new_account()
    async with connect(url, token) as client:
        results = [
            await client.call_tool(
                "store_credential",
                {"name": "main", "api_key": account.api_key, "secret_key": account.secret_key},
            ),
            await client.call_tool("list_credentials", {}),
            await client.call_tool("alpaca_get_account", {}),
        ]
    assert [r.is_error for r in results] == [False, False, False], [text_of(r) for r in results]
    seen += [r.model_dump_json() for r in results]

    # Refused variants that carry the real token inside them.
    for presented in (token + "x", token[:-1], f"{token} {token}", token[:-4] + "AAAA"):
        response = httpx2.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {presented}", "Accept": "application/json, text/event-stream"},
            timeout=10,
        )
        assert response.status_code == 401
        seen += [response.text, str(response.headers)]

    for args in (
        ("tokens", "list"),
        ("tokens", "list", "--json"),
        ("tokens", "revoke", token),  # refused: the token itself is not an id, and is not echoed
        ("tokens", "revoke", token[:DISPLAY_PREFIX_LENGTH]),
    ):
        done = cli(env, *args)
        seen += [done.stdout, done.stderr]
    listed = cli(env, "tokens", "list", "--json")
    assert '"status": "revoked"' in listed.stdout and '"last_used_at": null' not in listed.stdout

    for path in sorted((tmp_path / "data").glob("vault.db*")):
        seen.append(path.read_bytes().decode("latin-1"))
    seen.append(server_log.read_text())

    assert "DEBUG alpaca_vault.accounts.tokens: Bearer token refused" in seen[-1]  # DEBUG logging really ran
    assert [i for i, text in enumerate(seen) if leaks(token, text)] == []
