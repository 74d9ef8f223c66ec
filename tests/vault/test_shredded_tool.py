"""A shredded credential seen from an agent: a clear tool error naming it, never a crash.

The user is shredded (data key destroyed) while the server runs, as `users remove` does first;
the next tool calls on that credential fail with isError and the "destroyed" text, and the
server keeps serving everything else.
"""

from __future__ import annotations

from typing import Any

from alpaca_vault.db import Database
from alpaca_vault.server.settings import Settings
from alpaca_vault.vault import CredentialService, KeyRing
from alpaca_vault.vault.datakeys import shred_user
from tests.fixtures.mcp_server import connect, paper_session, text_of, wire


async def test_tools_on_a_shredded_credential_fail_clearly(
    server_settings: Settings, sim_account: Any
) -> None:
    async with paper_session(server_settings, sim_account, name="doomed") as client:
        assert not (await client.call_tool("alpaca_get_account", {})).is_error
        db = Database.create(server_settings.effective_database_url)
        try:
            assert server_settings.encryption_keys is not None
            ring = KeyRing.from_string(server_settings.encryption_keys.get_secret_value())
            user = await CredentialService(db, ring).find_user(server_settings.user)
            assert user is not None
            assert (await shred_user(db, user.id)).data_keys_destroyed == 1
        finally:
            await db.dispose()

        for tool, args in (("alpaca_get_account", {}), ("alpaca_get_positions", {"credential": "doomed"})):
            result = await client.call_tool(tool, args)
            assert result.is_error, text_of(result)
            text = text_of(result)
            assert (
                "Credential 'doomed' cannot be opened: its data key was destroyed (crypto-shredded)" in text
            )
            assert "Traceback" not in text
        # Metadata still lists it; the server still answers.
        listed = await client.call_tool("list_credentials", {})
        assert not listed.is_error
        assert [c["name"] for c in wire(listed)["structuredContent"]["credentials"]] == ["doomed"]
        clock = await client.call_tool("alpaca_get_clock", {"credential": "doomed"})
        assert clock.is_error and "destroyed" in text_of(clock)

    async with connect(server_settings) as fresh:  # a restarted server sees the same
        again = await fresh.call_tool("alpaca_get_account", {})
        assert again.is_error and "data key was destroyed" in text_of(again)
