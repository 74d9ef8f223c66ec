"""A damaged credential through the MCP Client (#10, item 8), on SQLite and PostgreSQL.

The attack (or accident): one credential's sealed value is overwritten with text that is not a
sealed token. Before, list_credentials failed for the whole user with an internal error, and so
did every tool. Now the list marks it ``status: damaged``, a tool that names it gets a tool error
that names the credential and the way forward (delete_credential, then store again), the user's
other credential keeps working, and delete_credential removes it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from alpaca_vault.db import Database
from tests.fixtures.mcp_server import connect, make_settings, text_of, wire
from tests.vault.test_damaged_rows import LEAK, damage


async def test_damaged_credential_is_listed_refused_by_name_and_deletable(
    tmp_path: Path, simulator: Any, database_url: str
) -> None:
    settings = make_settings(tmp_path / "data", simulator.base_url, database_url=database_url)
    one, two = simulator.new_account(), simulator.new_account()
    async with connect(settings) as client:
        for name, account in (("broken", one), ("fine", two)):
            stored = await client.call_tool(
                "store_credential",
                {"name": name, "api_key": account.api_key, "secret_key": account.secret_key},
            )
            assert not stored.is_error, text_of(stored)
            if name == "broken":
                broken_id = uuid.UUID(wire(stored)["structuredContent"]["credential"]["id"])
        db = Database.create(database_url)
        try:
            await damage(db, "credentials", "secret_key", broken_id)
        finally:
            await db.dispose()

        listed = await client.call_tool("list_credentials", {})
        assert not listed.is_error, text_of(listed)
        statuses = {c["name"]: c["status"] for c in wire(listed)["structuredContent"]["credentials"]}
        assert statuses == {"broken": "damaged", "fine": "ok"}
        assert "'broken' [paper, DAMAGED" in text_of(listed)
        assert "delete_credential(credential='broken')" in text_of(listed)
        assert LEAK not in listed.model_dump_json()

        used = await client.call_tool("alpaca_get_account", {"credential": "broken"})
        assert used.is_error
        message = text_of(used)
        assert "Credential 'broken' is damaged" in message
        assert "delete_credential(credential='broken')" in message and "store_credential" in message
        assert "internal error" not in message and LEAK not in message

        other = await client.call_tool("alpaca_get_account", {"credential": "fine"})
        assert not other.is_error, text_of(other)

        deleted = await client.call_tool("delete_credential", {"credential": "broken"})
        assert not deleted.is_error, text_of(deleted)
        after = await client.call_tool("list_credentials", {})
        assert [c["name"] for c in wire(after)["structuredContent"]["credentials"]] == ["fine"]
