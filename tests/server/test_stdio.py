"""`alpaca-vault serve` as a real subprocess over stdio, as Claude Desktop runs it.

The SDK's Client over stdio (a first start on an empty vault, then issue #15's round trips) is in
test_stdio_round_trips.py: one process for both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alpaca_vault.vault.keyring import generate_key
from tests.fixtures.databases import migrated_sqlite_file
from tests.fixtures.tool_listing import store_tool_listing
from tests.server.test_secret_canary import key_id_marker, leaks, secret_marker


def server_env(data_dir: Path, simulator_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_VAULT_")}
    env.update(
        ALPACA_VAULT_DATA_DIR=str(data_dir),
        ALPACA_VAULT_ENCRYPTION_KEYS=generate_key(),
        ALPACA_VAULT_PAPER_URL=simulator_url,
        ALPACA_VAULT_LIVE_URL=simulator_url,
        ALPACA_VAULT_DATA_URL=simulator_url,
        ALPACA_VAULT_LOG_LEVEL="DEBUG",
        # These tests store keys the orchestrator way; tests/console covers the default (key entry page).
        ALPACA_VAULT_ALLOW_SECRETS_IN_ARGUMENTS="true",
    )
    env.update(extra)
    return env


SERVE = [sys.executable, "-m", "alpaca_vault.server.cli", "serve"]


def _rpc(request_id: int | None, method: str, params: dict[str, Any] | None = None) -> str:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params is not None:
        message["params"] = params
    return json.dumps(message) + "\n"


@pytest.mark.timeout(120)
def test_raw_stdio_stream_is_pure_json_rpc_and_never_carries_a_secret(tmp_path: Path, simulator: Any) -> None:
    """Attack stopped: a secret (or a stray print/log line) written to stdout, the agent's channel."""
    key_id, secret = key_id_marker(), secret_marker()
    simulator.new_account(api_key=key_id, secret_key=secret)
    calls = [
        ("store_credential", {"name": "c", "api_key": key_id, "secret_key": secret}),
        ("store_credential", {"api_key": key_id, "secret_key": secret}),  # invalid: echoes input
        ("list_credentials", {}),
        ("alpaca_get_account", {}),
        ("alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1}),
        ("alpaca_place_order", {"symbol": "AAPL", "side": "buy"}),
        ("alpaca_get_positions", {}),
        ("alpaca_get_account", {"credential": "missing"}),
        ("validate_credential", {"credential": "c"}),
    ]
    # A vault file already at head, and a data dir that has served before: each tool is registered for its
    # first call (the first start's upgrade and its build of every tool: test_stdio_round_trips.py).
    migrated_sqlite_file(tmp_path / "vault.db")
    store_tool_listing(tmp_path, allow_secrets_in_arguments=True)
    server_environment = server_env(tmp_path, simulator.base_url)
    process = subprocess.Popen(
        SERVE,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=server_environment,
    )
    assert process.stdin and process.stdout and process.stderr
    raw_lines: list[bytes] = []

    def ask(request_id: int | None, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one message and, for a request, read stdout until its answer (the server answers
        requests concurrently, so each waits for the one before)."""
        assert process.stdin and process.stdout and process.stderr
        process.stdin.write(_rpc(request_id, method, params).encode())
        process.stdin.flush()
        while request_id is not None:
            line = process.stdout.readline()
            assert line, f"server closed stdout early: {process.stderr.read().decode()[-2000:]}"
            raw_lines.append(line)
            message: dict[str, Any] = json.loads(line)  # every stdout line is JSON-RPC, nothing else
            assert message["jsonrpc"] == "2.0"
            if message.get("id") == request_id:
                return message
        return {}

    ask(
        0,
        "initialize",
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    )
    ask(None, "notifications/initialized")
    answers = {
        i: ask(i, "tools/call", {"name": n, "arguments": a}) for i, (n, a) in enumerate(calls, start=1)
    }
    process.stdin.close()
    process.wait(timeout=30)
    stderr = process.stderr.read().decode()

    assert answers[1]["result"]["isError"] is False
    assert answers[2]["result"]["isError"] is True
    assert answers[5]["result"]["isError"] is False
    assert answers[6]["result"]["isError"] is True
    stdout = b"".join(raw_lines).decode()
    assert "DEBUG" in stderr  # logs went to stderr, at DEBUG
    master_key = server_environment["ALPACA_VAULT_ENCRYPTION_KEYS"]
    for marker in (key_id, secret, master_key):
        assert not leaks(marker, stdout)
        assert not leaks(marker, stderr)
    database = b"".join(p.read_bytes() for p in tmp_path.glob("vault.db*")).decode("latin-1")
    assert database and not leaks(secret, database) and not leaks(key_id, database)
