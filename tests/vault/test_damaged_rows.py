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
from alpaca_vault.vault.errors import CredentialDamaged, DataKeyDamaged, SealedByNewerVersion, UnsealError
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


async def test_a_damaged_data_key_is_reported_by_rewrap_and_replaced_once_its_credentials_are_removed(
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

    # The fix: the owner removes the damaged credentials and stores again; only then does a new data
    # key replace the damaged one (nothing is left under it to lose).
    for name in ("one", "two"):
        await service.delete(alice.id, name)
    await service.store(alice.id, "one", "paper", *key_pair())
    async with service.unsealed(alice.id, "one"):
        pass
    assert (await rewrap(database, keyring)).damaged == []


def _id(database: Database, value: uuid.UUID) -> object:
    return value if database.is_postgres else value.hex


async def data_key_row(
    database: Database, user_id: uuid.UUID
) -> tuple[uuid.UUID, str | None, object, object]:
    """The user's only data key row as stored: id, raw sealed_key text, retired_at, destroyed_at."""
    async with database.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT id, sealed_key, retired_at, destroyed_at FROM data_keys WHERE user_id = :u"),
                {"u": _id(database, user_id)},
            )
        ).one()
    return uuid.UUID(str(row[0])), row[1], row[2], row[3]


async def put_data_key(database: Database, key_id: uuid.UUID, stored: str) -> None:
    async with database.engine.begin() as conn:
        await conn.execute(
            text("UPDATE data_keys SET sealed_key = :s WHERE id = :id"),
            {"s": stored, "id": _id(database, key_id)},
        )


async def test_a_data_key_sealed_by_a_newer_version_is_not_destroyed(
    database: Database, service: CredentialService, keyring: KeyRing, alice: UserInfo
) -> None:
    """The fault: during a mixed-version rollout an older replica reads a data key a newer one wrote.

    It used to load as damaged, and the next store on that replica set it to NULL and marked it
    destroyed: every credential of the user crypto-shredded by a read.
    """
    await service.store(alice.id, "one", "paper", *key_pair())
    key_id, original, _, _ = await data_key_row(database, alice.id)
    assert original is not None and original.startswith("v1.")
    newer = "v9." + original.removeprefix("v1.")
    await put_data_key(database, key_id, newer)

    with pytest.raises(SealedByNewerVersion) as refused:
        await service.store(alice.id, "two", "paper", *key_pair())
    assert "newer alpaca-vault" in str(refused.value) and "Upgrade alpaca-vault" in str(refused.value)
    listed = await service.list(alice.id)
    assert [(c.name, c.status) for c in listed] == [("one", "ok")]  # not damaged: nothing to delete
    with pytest.raises(UnsealError, match=r"token format 'v9'.*Upgrade alpaca-vault"):
        async with service.unsealed(alice.id, "one"):
            pass
    rotated = await rotate(database, keyring)
    assert rotated.damaged == [] and len(rotated.failed) == 1

    assert await data_key_row(database, alice.id) == (key_id, newer, None, None)  # untouched
    # The upgraded replica's view, simulated by restoring the tag: the credential opens again.
    await put_data_key(database, key_id, original)
    async with service.unsealed(alice.id, "one"):
        pass


async def test_a_damaged_data_key_is_not_replaced_behind_the_owners_back(
    database: Database, service: CredentialService, alice: UserInfo
) -> None:
    """The fault: one stray write to a data key, then any store made a new key and destroyed the old one.

    That shredded every credential under it, although a backup of the row could have recovered them.
    """
    await service.store(alice.id, "one", "paper", *key_pair())
    await service.store(alice.id, "two", "paper", *key_pair())
    key_id, original, _, _ = await data_key_row(database, alice.id)
    await damage(database, "data_keys", "sealed_key", key_id)

    for attempt in (
        service.store(alice.id, "three", "paper", *key_pair()),
        service.update(alice.id, "one", api_key=key_pair()[0], secret_key=key_pair()[1]),
    ):
        with pytest.raises(DataKeyDamaged) as refused:
            await attempt
        message = str(refused.value)
        assert "'one', 'two'" in message and "restore this user's data_keys row from a backup" in message
        assert "removes each of them" in message and LEAK not in message
    assert await data_key_row(database, alice.id) == (key_id, GARBAGE, None, None)  # not destroyed
    assert sorted(c.name for c in await service.list(alice.id)) == ["one", "two"]

    # The owner restores the row from a backup: everything opens again.
    await put_data_key(database, key_id, str(original))
    for name in ("one", "two"):
        async with service.unsealed(alice.id, name):
            pass
