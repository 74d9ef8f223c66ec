"""The gate resolves a credential, runs its hooks, then unseals: the row resolve read is opened only
while nothing else has been committed since (the audit trail's own inline appends aside)."""

from __future__ import annotations

import sqlite3

import pytest

from alpaca_vault.audit import AuditLog, ChainKeys
from alpaca_vault.audit.chain import STDIO
from alpaca_vault.db import Database
from alpaca_vault.vault import CredentialInactive, CredentialNotFound, CredentialService, KeyRing, UserInfo
from tests.vault.conftest import key_pair


async def test_a_change_committed_after_resolve_is_what_unseal_opens(
    service: CredentialService, alice: UserInfo
) -> None:
    stored = await service.store(alice.id, "main", "paper", *key_pair())
    resolved = await service.resolve(alice.id, "main")
    new_api, new_secret = key_pair()
    await service.update(alice.id, "main", api_key=new_api, secret_key=new_secret)
    async with service.unsealed(alice.id, str(stored.id), resolved=resolved) as opened:
        assert opened.api_key.get_secret_value() == new_api.get_secret_value()  # not the resolved row's keys

    resolved = await service.resolve(alice.id, "main")
    await service.update(alice.id, "main", is_active=False)  # deactivated while the hooks ran
    with pytest.raises(CredentialInactive):
        async with service.unsealed(alice.id, str(stored.id), resolved=resolved):
            pass


async def test_the_resolved_row_opens_only_the_credential_named(
    service: CredentialService, alice: UserInfo, bob: UserInfo
) -> None:
    main = await service.store(alice.id, "main", "paper", *key_pair())
    spare_pair = key_pair()
    spare = await service.store(alice.id, "spare", "paper", *spare_pair)
    resolved = await service.resolve(alice.id, "main")
    async with service.unsealed(alice.id, str(spare.id), resolved=resolved) as opened:  # a hook swapped it
        assert opened.info.id == spare.id
        assert opened.api_key.get_secret_value() == spare_pair[0].get_secret_value()
    resolved = await service.resolve(alice.id, "main")
    with pytest.raises(CredentialNotFound):
        async with service.unsealed(bob.id, str(main.id), resolved=resolved):  # another user: never
            pass


async def test_an_audit_append_between_resolve_and_unseal_costs_no_second_read(
    database: Database, keyring: KeyRing, service: CredentialService, alice: UserInfo
) -> None:
    if not database.is_sqlite:
        pytest.skip("PostgreSQL reads the row again (no data_version to tell nothing changed)")
    stored = await service.store(alice.id, "main", "paper", *key_pair())
    log = AuditLog(database, ChainKeys.from_keyring(keyring))
    resolved = await service.resolve(alice.id, "main")
    await log.append(alice.id, "credential.unseal", STDIO, credential_id=stored.id, credential_name="main")
    statements: list[str] = []
    connection: sqlite3.Connection = database._inline.connections.connection()  # type: ignore[union-attr]
    connection.set_trace_callback(statements.append)
    try:
        async with service.unsealed(alice.id, str(stored.id), resolved=resolved) as opened:
            assert opened.info.name == "main"
    finally:
        connection.set_trace_callback(None)
    assert not [s for s in statements if "FROM credentials" in s]
    assert [e.action for e in await log.events(alice.id)] == ["credential.unseal"]
