"""One damaged sealed value must not take a user's other credentials down with it (#10, item 8).

The attack (or accident): a stray write, a truncated restore or a hand edit leaves one row's sealed
value malformed. Loading that row used to raise while parsing the token, so listing, deleting and
rotating every credential of that user failed, the CLI printed a traceback, and `keys rotate` could
never finish (the old master key could never be dropped). Now the row loads as damaged: listed as
such, deletable, skipped and named by rotation, refused with a clear error when used.
On SQLite and PostgreSQL, through the service; tests/cli and tests/tools drive the CLI and the MCP Client.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from alpaca_vault.db import Database
from alpaca_vault.vault import CredentialService, KeyRing, UserInfo
from alpaca_vault.vault.errors import CredentialDamaged
from alpaca_vault.vault.rotation import migrate_old_form, rewrap, rotate, rotate_data_keys
from tests.vault.conftest import key_pair, store_old_form

# Shaped like a token whose "version" is a plaintext key id, as a bug that wrote a secret in the clear
# would leave it: the damage report must never quote any of it (it used to quote the first 8 characters).
LEAK = "PKLEAK99"
GARBAGE = f"{LEAK}.SK{LEAK}.AAAAAAAA"


async def damage(database: Database, table: str, column: str, row_id: uuid.UUID) -> None:
    """Overwrite one stored value with text that is not a sealed token (bypassing the column type)."""
    async with database.engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE {table} SET {column} = :garbage WHERE id = :id"),
            {"garbage": GARBAGE, "id": row_id if database.is_postgres else row_id.hex},
        )


async def test_a_damaged_value_is_listed_refused_by_name_deletable_and_spares_the_others(
    database: Database, service: CredentialService, alice: UserInfo
) -> None:
    broken = await service.store(alice.id, "broken", "paper", *key_pair())
    fine = await service.store(alice.id, "fine", "paper", *key_pair())
    await damage(database, "credentials", "secret_key", broken.id)

    listed = {c.name: c for c in await service.list(alice.id)}
    assert listed["broken"].status == "damaged"
    assert "secret key is not a sealed value" in (listed["broken"].problem or "")
    assert LEAK not in (listed["broken"].problem or "")
    assert listed["fine"].status == "ok" and listed["fine"].problem is None

    with pytest.raises(CredentialDamaged) as refused:
        async with service.unsealed(alice.id, "broken"):
            pass
    assert "Credential 'broken' is damaged" in str(refused.value)
    assert "delete it and store the key pair again" in str(refused.value)
    assert LEAK not in str(refused.value)
    async with service.unsealed(alice.id, "fine") as opened:
        assert opened.info.id == fine.id

    assert (await service.delete(alice.id, "broken")).name == "broken"
    assert [c.name for c in await service.list(alice.id)] == ["fine"]


async def test_rotation_skips_and_names_damaged_rows_and_rotates_the_rest(
    database: Database, service: CredentialService, keyring: KeyRing, alice: UserInfo, bob: UserInfo
) -> None:
    broken = await service.store(alice.id, "broken", "paper", *key_pair())
    await service.store(alice.id, "fine", "paper", *key_pair())
    await service.store(bob.id, "bobs", "paper", *key_pair())
    await damage(database, "credentials", "api_key", broken.id)

    rotated = await rotate_data_keys(database, keyring)
    assert rotated.failed == []
    assert [(d.what, d.credential, d.user_id) for d in rotated.damaged] == [
        ("credential", "broken", alice.id)
    ]
    assert rotated.users_rotated == 2 and rotated.credentials_resealed == 2
    for user, name in ((alice, "fine"), (bob, "bobs")):
        async with service.unsealed(user.id, name):
            pass
    # Rotated again after the fix: nothing left to skip.
    await service.delete(alice.id, "broken")
    assert (await rotate_data_keys(database, keyring)).damaged == []


async def test_an_old_form_damaged_value_is_skipped_by_the_migration(
    database: Database, service: CredentialService, keyring: KeyRing, alice: UserInfo
) -> None:
    broken = await store_old_form(database, keyring, alice.id, "broken", key_pair())
    await store_old_form(database, keyring, alice.id, "fine", key_pair())
    await damage(database, "credentials", "api_key", broken)
    moved = await migrate_old_form(database, keyring)
    assert moved.credentials_migrated == 1 and moved.failed == []
    assert [d.credential for d in moved.damaged] == ["broken"]


async def test_a_damaged_data_key_is_reported_by_rewrap_and_replaced_on_the_next_store(
    database: Database, service: CredentialService, keyring: KeyRing, alice: UserInfo, bob: UserInfo
) -> None:
    await service.store(alice.id, "one", "paper", *key_pair())
    await service.store(alice.id, "two", "paper", *key_pair())
    await service.store(bob.id, "bobs", "paper", *key_pair())
    async with database.engine.connect() as conn:
        key_id = (
            await conn.execute(
                text("SELECT id FROM data_keys WHERE user_id = :u"),
                {"u": alice.id if database.is_postgres else alice.id.hex},
            )
        ).scalar_one()
    await damage(database, "data_keys", "sealed_key", uuid.UUID(str(key_id)))

    listed = await service.list(alice.id)
    assert {c.status for c in listed} == {"damaged"}
    assert all("data key is not a sealed value" in (c.problem or "") for c in listed)
    with pytest.raises(CredentialDamaged):
        async with service.unsealed(alice.id, "one"):
            pass

    result = await rotate(database, keyring)
    assert result.failed == []
    assert [(d.what, d.user_id) for d in result.damaged] == [("data key", alice.id)]
    async with service.unsealed(bob.id, "bobs"):
        pass

    # The fix: remove the damaged credentials and store again; a new data key replaces the damaged one.
    for name in ("one", "two"):
        await service.delete(alice.id, name)
    await service.store(alice.id, "one", "paper", *key_pair())
    async with service.unsealed(alice.id, "one"):
        pass
    assert (await rewrap(database, keyring)).damaged == []
