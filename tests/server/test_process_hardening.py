"""Issue #10, point 11: core dumps off and a non-dumpable process in server mode; no new master key
over a vault that already holds sealed values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.mcp_server import connect, make_settings, text_of
from tests.server.test_stdio import SERVE, _rpc, server_env

INITIALIZE = (
    "initialize",
    {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_serve_runs_with_core_dumps_off(tmp_path: Path, simulator: Any) -> None:
    """Attack stopped: a crash (or `kill -SEGV`) writing a core file full of unsealed keys to disk."""
    process = subprocess.Popen(
        SERVE,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=server_env(tmp_path, simulator.base_url),
    )
    try:
        assert process.stdin and process.stdout
        process.stdin.write(_rpc(1, *INITIALIZE).encode())
        process.stdin.flush()
        assert b"serverInfo" in process.stdout.readline()  # serving: past start-up
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
        assert core.split()[4:6] == ["0", "0"], core
    finally:
        process.kill()
        process.wait()


DUMPABLE_PROBE = """
import ctypes, resource, sys
from alpaca_vault.server import runner
from alpaca_vault.server.settings import load_settings

def report(*args, **kwargs):  # in place of the event loop: report how run_server left the process
    dumpable = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    print(dumpable, resource.getrlimit(resource.RLIMIT_CORE)[0])

runner.anyio.run = report
runner.run_server(load_settings(), transport="stdio")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")
def test_serve_marks_the_process_non_dumpable(tmp_path: Path, simulator: Any) -> None:
    """Attack stopped: another process of the same user reading the server's memory or environment
    (/proc/PID/mem, environ: ALPACA_VAULT_ENCRYPTION_KEYS) or attaching a debugger."""
    done = subprocess.run(
        [sys.executable, "-c", DUMPABLE_PROBE],
        env=server_env(tmp_path, simulator.base_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["0", "0"], done.stdout + done.stderr


async def test_a_lost_master_key_file_is_not_silently_replaced(
    tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    """Attack stopped (and accident): master.key deleted or moved; the server made a new one and sealed new
    values under it, splitting the vault into halves no single key opens."""
    settings = make_settings(tmp_path / "data", simulator.base_url, encryption_keys=None)
    async with connect(settings) as client:
        stored = await client.call_tool(
            "store_credential",
            {"name": "c", "api_key": sim_account.api_key, "secret_key": sim_account.secret_key},
        )
        assert not stored.is_error, text_of(stored)
    key_file = settings.data_dir / "master.key"
    assert key_file.exists()
    key_file.unlink()
    async with connect(settings) as client:
        refused = await client.call_tool("list_credentials", {})
    assert refused.is_error
    text = text_of(refused)
    assert "master.key" in text and "already holds values sealed" in text and "Restore" in text, text
    assert not key_file.exists(), "a new master key was created over sealed values"


async def test_a_fresh_vault_still_makes_its_key_file(tmp_path: Path, simulator: Any) -> None:
    settings = make_settings(tmp_path / "data", simulator.base_url, encryption_keys=None)
    async with connect(settings) as client:
        listed = await client.call_tool("list_credentials", {})
    assert not listed.is_error, text_of(listed)
    assert (settings.data_dir / "master.key").exists()
