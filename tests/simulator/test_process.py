"""The simulator as its own process, inside a running event loop, and standing alone."""

from __future__ import annotations

import ast
import asyncio
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

import alpaca_vault.simulator
from alpaca_vault.server import cli
from alpaca_vault.simulator import AccountSpec, SimulatorConfig, create_app, serve_in_thread

SIMULATOR_DIR = Path(alpaca_vault.simulator.__file__).parent


def _start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "alpaca_vault.server.cli", "simulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    for line in process.stderr:
        lines.append(line)
        if line.strip().startswith("point alpaca-vault at it"):
            break
    return process, lines


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_cli_without_accounts_prints_a_demo_key_pair(stop: list[subprocess.Popen[str]]) -> None:
    process, lines = _start()
    stop.append(process)
    text = "".join(lines)
    url = re.search(r"on (http://127\.0\.0\.1:\d+)", text)
    key = re.search(r"APCA-API-KEY-ID=(PK[A-Z0-9]{18})\b", text)
    secret = re.search(r"APCA-API-SECRET-KEY=([A-Za-z0-9]{40})\b", text)
    assert url and key and secret, text
    headers = {"APCA-API-KEY-ID": key.group(1), "APCA-API-SECRET-KEY": secret.group(1)}
    account = httpx2.get(url.group(1) + "/v2/account", headers=headers)
    assert account.status_code == 200
    assert account.json()["cash"] == "100000.00"


def test_cli_with_accounts_and_a_startup_fault(stop: list[subprocess.Popen[str]]) -> None:
    process, lines = _start(
        "--account",
        "PKALICE0000000000000:alice-secret:2500",
        "--account",
        "PKBOB000000000000000:bob-secret",
        "--fault",
        '{"match": "GET /v2/clock", "status": 503}',
    )
    stop.append(process)
    text = "".join(lines)
    assert "alice-secret" not in text and "bob-secret" not in text  # given secrets are never echoed
    match = re.search(r"on (http://127\.0\.0\.1:\d+)", text)
    assert match, text
    url = match.group(1)
    alice = {"APCA-API-KEY-ID": "PKALICE0000000000000", "APCA-API-SECRET-KEY": "alice-secret"}
    bob = {"APCA-API-KEY-ID": "PKBOB000000000000000", "APCA-API-SECRET-KEY": "bob-secret"}
    assert httpx2.get(url + "/v2/account", headers=alice).json()["cash"] == "2500.00"
    assert httpx2.get(url + "/v2/account", headers=bob).json()["cash"] == "100000.00"
    assert httpx2.get(url + "/v2/clock", headers=alice).status_code == 503


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--account", "only-a-key"], "KEY:SECRET"),
        (["--account", "PK:secret:lots"], "is not a number"),
        (["--fault", '{"match": "* *", "status": 200}'], "status must be one of"),
        (["--clock", "sometimes"], "always_open or exchange_hours"),
    ],
)
def test_cli_bad_arguments_are_explained(args: list[str], complaint: str) -> None:
    result = CliRunner().invoke(cli.app, ["simulator", "--port", "0", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert complaint in result.output
    assert "Traceback" not in result.output


async def test_serve_in_thread_works_inside_a_running_event_loop() -> None:
    config = SimulatorConfig(accounts=[AccountSpec(api_key="PKLOOP", secret_key="loop-secret")])
    headers = {"APCA-API-KEY-ID": "PKLOOP", "APCA-API-SECRET-KEY": "loop-secret"}
    with serve_in_thread(create_app(config)) as base_url:
        async with httpx2.AsyncClient(base_url=base_url, headers=headers) as client:
            responses = await asyncio.gather(*(client.get("/v2/account") for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert asyncio.get_running_loop().is_running()


def test_two_simulators_side_by_side_keep_separate_books() -> None:
    with (
        serve_in_thread(create_app(SimulatorConfig())) as first,
        serve_in_thread(create_app(SimulatorConfig())) as second,
    ):
        assert first != second
        httpx2.post(first + "/_simulator/accounts", json={"api_key": "PKONLYFIRST", "secret_key": "s"})
        headers = {"APCA-API-KEY-ID": "PKONLYFIRST", "APCA-API-SECRET-KEY": "s"}
        assert httpx2.get(first + "/v2/account", headers=headers).status_code == 200
        assert httpx2.get(second + "/v2/account", headers=headers).status_code == 401


def test_simulator_imports_nothing_from_other_rooms() -> None:
    """It must run as an independent Alpaca stand-in: only its own package and third parties."""
    offenders = []
    for path in SIMULATOR_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] if node.level == 0 else []
            for name in names:
                if name.startswith("alpaca_vault") and not name.startswith("alpaca_vault.simulator"):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
    assert len(list(SIMULATOR_DIR.rglob("*.py"))) >= 5
