"""stdio acts as one named user (`serve --user U`), also on PostgreSQL as the application role."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from pydantic import SecretStr

from alpaca_vault.accounts import AccountAdmin
from alpaca_vault.db import Database
from alpaca_vault.server.app import build_server
from alpaca_vault.vault.credentials import CredentialService
from alpaca_vault.vault.keyring import KeyRing, generate_key
from tests.fixtures.mcp_server import make_settings, text_of, wire
from tests.multiuser.conftest import RlsDatabase

pytestmark = pytest.mark.postgres


async def test_stdio_serves_the_named_user_only(
    rls_database: RlsDatabase, tmp_path: Path, simulator: Any
) -> None:
    key = generate_key()
    owner = Database.create(rls_database.owner_url)
    app = Database.create(rls_database.app_url)
    try:
        alice = await AccountAdmin(owner).add_user("alice")
        vault = CredentialService(app, KeyRing.load(key, tmp_path))
        await vault.store(
            alice.id, "alice-paper", "paper", SecretStr("PKALICE0000000000001"), SecretStr("s" * 40)
        )
    finally:
        await owner.dispose()
        await app.dispose()

    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_VAULT_")}
    env.update(
        ALPACA_VAULT_DATABASE_URL=rls_database.app_url,
        ALPACA_VAULT_ENCRYPTION_KEYS=key,
        ALPACA_VAULT_DATA_DIR=str(tmp_path / "data"),
        ALPACA_VAULT_PAPER_URL=simulator.base_url,
        ALPACA_VAULT_LIVE_URL=simulator.base_url,
        ALPACA_VAULT_DATA_URL=simulator.base_url,
    )

    async def credentials_seen_by(user: str) -> list[str]:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "alpaca_vault.server.cli", "serve", "--user", user], env=env
        )
        async with Client(params) as client:
            result = await client.call_tool("list_credentials", {})
            assert not result.is_error, text_of(result)
            return [c["name"] for c in wire(result)["structuredContent"]["credentials"]]

    async def credentials_seen_in_this_process_by(user: str) -> list[str]:
        # The server `serve --user` builds, with the same settings (alice's process shows the flag reaches
        # them): a second process would add ~3 s of imports and nothing this test asserts.
        settings = make_settings(
            tmp_path / "data-in-process",
            simulator.base_url,
            database_url=rls_database.app_url,
            encryption_keys=key,
            user=user,
            allow_secrets_in_arguments=False,
        )
        async with Client(build_server(settings)) as client:
            result = await client.call_tool("list_credentials", {})
            assert not result.is_error, text_of(result)
            return [c["name"] for c in wire(result)["structuredContent"]["credentials"]]

    # carol does not exist yet: stdio creates its user (as the application role, while alice's server runs)
    alice_sees, carol_sees = await asyncio.gather(
        credentials_seen_by("alice"), credentials_seen_in_this_process_by("carol")
    )
    assert {"alice": alice_sees, "carol": carol_sees} == {"alice": ["alice-paper"], "carol": []}
