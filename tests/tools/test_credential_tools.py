"""Credential tools through the real MCP protocol (SDK Client, in-process) against the simulator."""

from __future__ import annotations

from typing import Any

from alpaca_vault.server.settings import Settings
from tests.fixtures.mcp_server import connect, paper_session, text_of, wire


async def test_store_validates_and_list_shows_metadata_only(
    server_settings: Settings, sim_account: Any
) -> None:
    async with connect(server_settings) as mcp_client:
        stored = await mcp_client.call_tool(
            "store_credential",
            {"name": "main", "api_key": sim_account.api_key, "secret_key": sim_account.secret_key},
        )
        assert not stored.is_error, text_of(stored)
        body = wire(stored)["structuredContent"]
        assert body["validated"] is True
        assert body["credential"]["name"] == "main"
        assert body["credential"]["environment"] == "paper"
        assert body["credential"]["account_number"] == sim_account.account_number
        assert body["credential"]["account_status"] == "ACTIVE"

        listed = await mcp_client.call_tool("list_credentials", {})
        assert not listed.is_error
        names = [c["name"] for c in wire(listed)["structuredContent"]["credentials"]]
        assert names == ["main"]
        for result in (stored, listed):
            raw = result.model_dump_json()
            assert sim_account.secret_key not in raw
            assert sim_account.api_key not in raw


async def test_store_with_wrong_secret_is_refused_and_nothing_is_stored(
    server_settings: Settings, sim_account: Any
) -> None:
    async with connect(server_settings) as mcp_client:
        result = await mcp_client.call_tool(
            "store_credential",
            {
                "name": "bad",
                "api_key": sim_account.api_key,
                "secret_key": "WrongSecretWrongSecretWrongSecret0000000",
            },
        )
        assert result.is_error
        assert "did not accept this key pair" in text_of(result)
        assert "Nothing was stored" in text_of(result)
        listed = await mcp_client.call_tool("list_credentials", {})
        assert wire(listed)["structuredContent"]["credentials"] == []


async def test_paper_key_stored_as_live_is_refused(server_settings: Settings, sim_account: Any) -> None:
    async with connect(server_settings) as mcp_client:
        result = await mcp_client.call_tool(
            "store_credential",
            {
                "name": "oops",
                "api_key": sim_account.api_key,
                "secret_key": sim_account.secret_key,
                "environment": "live",
            },
        )
        assert result.is_error
        assert "looks like a paper key" in text_of(result)
        assert "Store it as paper" in text_of(result) and "Nothing was stored" in text_of(result)


async def test_inactive_alpaca_account_is_refused(server_settings: Settings, simulator: Any) -> None:
    async with connect(server_settings) as mcp_client:
        closed = simulator.new_account(status="ACCOUNT_CLOSED")
        result = await mcp_client.call_tool(
            "store_credential", {"name": "closed", "api_key": closed.api_key, "secret_key": closed.secret_key}
        )
        assert result.is_error
        assert "not ACTIVE" in text_of(result)
        # The caller can still store it deliberately, unvalidated.
        forced = await mcp_client.call_tool(
            "store_credential",
            {"name": "closed", "api_key": closed.api_key, "secret_key": closed.secret_key, "validate": False},
        )
        assert not forced.is_error
        assert wire(forced)["structuredContent"]["validated"] is False


async def test_duplicate_name_and_duplicate_key_pair_are_refused(
    server_settings: Settings, sim_account: Any
) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        same_name = await paper_client.call_tool(
            "store_credential",
            {"name": "paper-1", "api_key": "PKOTHER0000000000001", "secret_key": "x" * 40, "validate": False},
        )
        assert same_name.is_error
        assert "paper-1" in text_of(same_name) and "already exists" in text_of(same_name)

        same_pair = await paper_client.call_tool(
            "store_credential",
            {"name": "copy", "api_key": sim_account.api_key, "secret_key": sim_account.secret_key},
        )
        assert same_pair.is_error
        assert "paper-1" in text_of(same_pair)
        listed = await paper_client.call_tool("list_credentials", {})
        assert [c["name"] for c in wire(listed)["structuredContent"]["credentials"]] == ["paper-1"]


async def test_unknown_credential_lists_the_available_names(
    server_settings: Settings, sim_account: Any
) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        result = await paper_client.call_tool("alpaca_get_account", {"credential": "main"})
        assert result.is_error
        text = text_of(result)
        assert "Credential 'main' not found" in text
        assert "paper-1" in text
        assert "list_credentials" in text


async def test_credential_is_optional_only_when_exactly_one_is_active(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        alone = await paper_client.call_tool("alpaca_get_account", {})
        assert not alone.is_error
        assert wire(alone)["structuredContent"]["credential"] == "paper-1"

        second = simulator.new_account()
        stored = await paper_client.call_tool(
            "store_credential",
            {"name": "paper-2", "api_key": second.api_key, "secret_key": second.secret_key},
        )
        assert not stored.is_error
        ambiguous = await paper_client.call_tool("alpaca_get_account", {})
        assert ambiguous.is_error
        assert "paper-1" in text_of(ambiguous) and "paper-2" in text_of(ambiguous)
        chosen = await paper_client.call_tool("alpaca_get_account", {"credential": "paper-2"})
        assert wire(chosen)["structuredContent"]["account"]["account_number"] == second.account_number


async def test_validate_rename_deactivate_and_delete(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        validated = await paper_client.call_tool("validate_credential", {"credential": "paper-1"})
        assert not validated.is_error, text_of(validated)
        body = wire(validated)["structuredContent"]["credential"]
        assert body["last_validated_at"] is not None
        assert body["account_number"] == sim_account.account_number

        renamed = await paper_client.call_tool(
            "update_credential", {"credential": "paper-1", "new_name": "main"}
        )
        assert wire(renamed)["structuredContent"]["credential"]["name"] == "main"

        off = await paper_client.call_tool("update_credential", {"credential": "main", "is_active": False})
        assert wire(off)["structuredContent"]["credential"]["is_active"] is False
        refused = await paper_client.call_tool("alpaca_get_account", {"credential": "main"})
        assert refused.is_error
        assert "inactive" in text_of(refused).lower() or "deactivated" in text_of(refused).lower()

        on = await paper_client.call_tool("update_credential", {"credential": "main", "is_active": True})
        assert wire(on)["structuredContent"]["credential"]["is_active"] is True

        by_id = body["id"]
        deleted = await paper_client.call_tool("delete_credential", {"credential": by_id})
        assert not deleted.is_error
        assert wire(deleted)["structuredContent"]["deleted"]["name"] == "main"
        listed = await paper_client.call_tool("list_credentials", {})
        assert wire(listed)["structuredContent"]["credentials"] == []


async def test_update_requires_both_halves_of_a_key_pair(server_settings: Settings, sim_account: Any) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        result = await paper_client.call_tool(
            "update_credential", {"credential": "paper-1", "api_key": "PKX1234567"}
        )
        assert result.is_error
        assert "both api_key and secret_key" in text_of(result)
        nothing = await paper_client.call_tool("update_credential", {"credential": "paper-1"})
        assert nothing.is_error
        assert "Nothing to change" in text_of(nothing)


async def test_replacing_the_key_pair_validates_the_new_pair(
    server_settings: Settings, sim_account: Any, simulator: Any
) -> None:
    async with paper_session(server_settings, sim_account) as paper_client:
        fresh = simulator.new_account()
        replaced = await paper_client.call_tool(
            "update_credential",
            {"credential": "paper-1", "api_key": fresh.api_key, "secret_key": fresh.secret_key},
        )
        assert not replaced.is_error, text_of(replaced)
        account = await paper_client.call_tool("alpaca_get_account", {"credential": "paper-1"})
        assert wire(account)["structuredContent"]["account"]["account_number"] == fresh.account_number
