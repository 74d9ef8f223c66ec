"""Cold start to tools/list (#15 item 9): what `serve` does before it can answer, and what it leaves for later.

bench/tool_latency.py measures the time against the peer; these tests hold the two decisions that make it:
the database layer is not imported to list the tools, and the runtime opens once the first tools/list is out.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client

from alpaca_vault.server.app import build_server
from alpaca_vault.server.settings import load_settings

LISTING_ONLY = """
import sys
from alpaca_vault.server.hardening import harden_process
from alpaca_vault.server.app import build_server
from alpaca_vault.server.settings import load_settings
import anyio

server = build_server(load_settings(data_dir=sys.argv[1]))
tools = anyio.run(server.list_tools)
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"sqlalchemy", "alembic", "aiosqlite", "asyncpg"})
print(len(tools), *heavy, "alpaca_vault.db.models" in sys.modules)
"""


def test_listing_the_tools_loads_no_database_layer(tmp_path: Path) -> None:
    """SQLAlchemy and the models cost about a fifth of the start; the runtime's warm-up imports them."""
    result = subprocess.run(
        [sys.executable, "-c", LISTING_ONLY, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    count, *heavy, models = result.stdout.split()
    assert int(count) > 40 and heavy == [] and models == "False"


async def _appears(path: Path, within: float = 30.0) -> None:
    with anyio.fail_after(within):
        while not path.exists():
            await anyio.sleep(0.02)


async def test_the_runtime_opens_once_the_first_tools_list_is_answered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Opening the vault (here: making its key file) no longer competes with the handshake for the CPU."""
    monkeypatch.delenv("ALPACA_VAULT_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("ALPACA_VAULT_DATABASE_URL", raising=False)
    async with Client(build_server(load_settings(data_dir=tmp_path))) as client:
        await anyio.sleep(0.5)  # well inside the latest start (WARM_UP_AT_THE_LATEST_SECONDS)
        assert not (tmp_path / "master.key").exists()
        assert len((await client.list_tools()).tools) > 40
        await _appears(tmp_path / "master.key")
        account = await client.call_tool("list_credentials", {})
        assert not account.is_error
