"""tools/list is dumped once per process for each pair of the settings that shape it (#9).

Every server must still answer exactly the tools it registered, whatever another server of the
same process listed before it: with the key arguments hidden or not, with fewer toolsets or all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client

from alpaca_vault.server.app import build_server
from alpaca_vault.server.settings import Settings
from tests.fixtures.databases import migrated_sqlite_file
from tests.fixtures.mcp_server import make_settings

# Nothing is called: the broker URL is never reached.
UNUSED_BROKER = "http://127.0.0.1:9"


def _settings(tmp_path: Path, name: str, **overrides: Any) -> Settings:
    data_dir = tmp_path / name
    migrated_sqlite_file(data_dir / "vault.db")
    return make_settings(data_dir, UNUSED_BROKER, **overrides)


async def _listed_and_registered(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a client is answered, and what the server registered (dumped without the handler)."""
    server = build_server(settings)
    async with Client(server) as client:
        listed = [
            tool.model_dump(by_alias=True, mode="json", exclude_none=True)
            for tool in (await client.list_tools()).tools
        ]
    registered = [
        tool.model_dump(by_alias=True, mode="json", exclude_none=True) for tool in await server.list_tools()
    ]
    return listed, registered


def _properties(tools: list[dict[str, Any]], name: str) -> set[str]:
    return set(next(t for t in tools if t["name"] == name)["inputSchema"]["properties"])


async def test_each_server_lists_its_own_tools_whatever_another_listed_before(tmp_path: Path) -> None:
    keys_as_arguments = await _listed_and_registered(_settings(tmp_path, "a"))
    key_entry_pages = await _listed_and_registered(_settings(tmp_path, "b", allow_secrets_in_arguments=False))
    two_toolsets = await _listed_and_registered(_settings(tmp_path, "c", toolsets="credentials,account"))
    keys_as_arguments_again = await _listed_and_registered(_settings(tmp_path, "d"))

    for listed, registered in (keys_as_arguments, key_entry_pages, two_toolsets, keys_as_arguments_again):
        assert listed == registered
    # The three listings differ where their settings do, so none could have been another's.
    assert {"api_key", "secret_key"} <= _properties(keys_as_arguments[0], "store_credential")
    assert not {"api_key", "secret_key"} & _properties(key_entry_pages[0], "store_credential")
    assert len(two_toolsets[0]) < len(keys_as_arguments[0])
    assert {t["name"] for t in two_toolsets[0]} >= {"list_credentials", "alpaca_get_account"}
    assert "alpaca_place_order" not in {t["name"] for t in two_toolsets[0]}
