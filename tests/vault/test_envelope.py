"""Envelope encryption on SQLite and PostgreSQL: per-user data keys, their rotation, shredding, migration."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text

from alpaca_vault.db import Credential, Database, DataKey
from alpaca_vault.vault import (
    CredentialService,
    DuplicateKeyPair,
    KeyRing,
    UnsealError,
    UserInfo,
    generate_key,
)
from alpaca_vault.vault.datakeys import shred_user
from alpaca_vault.vault.errors import DataKeyDestroyed
from alpaca_vault.vault.rotation import (
    OldFormReport,
    RotationProgress,
    migrate_old_form,
    old_form_report,
    rewrap,
    rotate,
    rotate_data_keys,
)
from tests.vault.conftest import key_pair, store_old_form

Pairs = dict[str, tuple[SecretStr, SecretStr]]


async def _data_keys(database: Database, user_id: uuid.UUID | None = None) -> list[Any]:
    async with database.session(readonly=True) as session:
        query = select(DataKey.__table__).order_by(DataKey.created_at)
        if user_id is not None:
            query = query.where(DataKey.user_id == user_id)
        return list((await session.execute(query)).all())


async def _credential_rows(database: Database, user_id: uuid.UUID | None = None) -> list[Any]:
    async with database.session(readonly=True) as session:
        query = select(Credential.__table__).order_by(Credential.id)
        if user_id is not None:
            query = query.where(Credential.user_id == user_id)
        return list((await session.execute(query)).all())


async def _assert_open(service: CredentialService, user: UserInfo, pairs: Pairs) -> None:
    for name, (api, secret) in pairs.items():
        async with service.unsealed(user.id, name) as opened:
            assert opened.api_key.get_secret_value() == api.get_secret_value()
            assert opened.secret_key.get_secret_value() == secret.get_secret_value()


async def _store(service: CredentialService, user: UserInfo, names: list[str]) -> Pairs:
    pairs = {}
    for name in names:
        pairs[name] = key_pair()
        await service.store(user.id, name, "paper", *pairs[name])
    return pairs


async def test_round_trip_through_the_users_data_key(
    service: CredentialService, alice: UserInfo, bob: UserInfo, database: Database, keyring: KeyRing
) -> None:
    pairs = await _store(service, alice, ["a1", "a2"])
    await _store(service, bob, ["b1"])
    await _assert_open(service, alice, pairs)
    (alice_key,) = await _data_keys(database, alice.id)
    assert len(await _data_keys(database)) == 2  # one data key per user, not per credential
    # The data key is wrapped under the master key; the values name the data key that sealed them.
    assert alice_key.sealed_key.version == "v1" and alice_key.sealed_key.kid == keyring.primary_kid
    for row in await _credential_rows(database, alice.id):
        assert row.data_key_id == alice_key.id
        assert (row.api_key.version, row.api_key.kid) == ("v2", alice_key.id.hex)
        assert (row.secret_key.version, row.secret_key.kid) == ("v2", alice_key.id.hex)
        assert row.key_fingerprint.startswith(f"{alice_key.id.hex}:")
    # Replacing the keys seals them under the data key too; duplicates are still found.
    new_api, new_secret = key_pair()
    await service.update(alice.id, "a1", api_key=new_api, secret_key=new_secret)
    await _assert_open(service, alice, {"a1": (new_api, new_secret)})
    with pytest.raises(DuplicateKeyPair, match="'a2'"):
        await service.store(alice.id, "again", "paper", *pairs["a2"])


async def test_a_data_key_copied_to_another_user_fails(
    service: CredentialService, alice: UserInfo, bob: UserInfo, database: Database
) -> None:
    await _store(service, alice, ["mine"])
    await _store(service, bob, ["theirs"])
    (alice_key,) = await _data_keys(database, alice.id)
    (bob_key,) = await _data_keys(database, bob.id)
    async with database.session() as session:
        await session.execute(
            text("UPDATE data_keys SET sealed_key = :k WHERE user_id = :bob"),
            {"k": alice_key.sealed_key.to_token(), "bob": bob.id if database.is_postgres else bob.id.hex},
        )
    with pytest.raises(
        UnsealError, match="Credential 'theirs' could not be decrypted: the user's data key could not"
    ):
        async with service.unsealed(bob.id, "theirs"):
            pass
    assert bob_key.sealed_key != alice_key.sealed_key


async def test_master_rotation_rewraps_only_the_data_key_rows(
    database: Database, alice: UserInfo, bob: UserInfo
) -> None:
    key1, key2 = generate_key(), generate_key()
    service = CredentialService(database, KeyRing.from_string(key1))
    carol = await service.ensure_user("carol")
    pairs = {
        user.name: await _store(service, user, [f"{user.name}-{i}" for i in range(4)])
        for user in (alice, bob, carol)
    }
    before = await _credential_rows(database)
    ring = KeyRing.from_string(f"{key2},{key1}")
    seen: list[tuple[str, int]] = []
    result = await rotate(database, ring, batch_size=2, progress=lambda p: seen.append((p.phase, p.done)))
    # Three users, three data-key rows re-wrapped; twelve credentials, none touched.
    assert result.migration.credentials_migrated == 0
    assert (result.rewrap.data_keys_rewrapped, result.rewrap.batches, result.rewrap.already_current) == (
        3,
        2,
        0,
    )
    assert seen == [("rewrap", 2), ("rewrap", 3)]
    assert await _credential_rows(database) == before
    assert {row.sealed_key.kid for row in await _data_keys(database)} == {ring.primary_kid}
    only_new = CredentialService(database, KeyRing.from_string(key2))
    for user in (alice, bob, carol):
        await _assert_open(only_new, user, pairs[user.name])
    again = await rewrap(database, ring)
    assert (again.data_keys_rewrapped, again.already_current) == (0, 3)


async def test_data_key_rotation_reseals_one_users_values_and_destroys_the_old_key(
    service: CredentialService, alice: UserInfo, bob: UserInfo, database: Database
) -> None:
    alice_pairs = await _store(service, alice, ["a0", "a1", "a2"])
    bob_pairs = await _store(service, bob, ["b0"])
    (old_key,) = await _data_keys(database, alice.id)
    bob_before = await _credential_rows(database, bob.id)
    bob_keys_before = await _data_keys(database, bob.id)

    result = await rotate_data_keys(database, service._keyring, user_id=alice.id, batch_size=2)
    assert (result.users_rotated, result.credentials_resealed, result.data_keys_destroyed) == (1, 3, 1)
    assert result.failed == []
    retired, current = await _data_keys(database, alice.id)
    assert retired.id == old_key.id and retired.destroyed_at is not None and retired.sealed_key is None
    assert current.retired_at is None and current.sealed_key is not None
    for row in await _credential_rows(database, alice.id):
        assert row.data_key_id == current.id and row.secret_key.kid == current.id.hex
    await _assert_open(service, alice, alice_pairs)
    with pytest.raises(DuplicateKeyPair, match="'a1'"):  # fingerprints moved with the values
        await service.store(alice.id, "dup", "paper", *alice_pairs["a1"])
    # Bob: untouched.
    assert await _credential_rows(database, bob.id) == bob_before
    assert await _data_keys(database, bob.id) == bob_keys_before
    await _assert_open(service, bob, bob_pairs)


async def test_interrupted_data_key_rotation_resumes_without_rotating_anyone_twice(
    service: CredentialService, database: Database
) -> None:
    users = [await service.ensure_user(f"user{i}") for i in range(4)]
    pairs = {user.name: await _store(service, user, [f"c{j}" for j in range(2)]) for user in users}

    def crash_half_way(progress: RotationProgress) -> None:
        if progress.phase == "reseal" and progress.done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await rotate_data_keys(database, service._keyring, batch_size=3, progress=crash_half_way)
    for user in users:  # half-rotated: every value still opens
        await _assert_open(service, user, pairs[user.name])
    resumed = await rotate_data_keys(database, service._keyring, batch_size=3)
    assert resumed.users_rotated == 0  # every user got a new key in the interrupted run
    assert (resumed.credentials_resealed, resumed.data_keys_destroyed) == (5, 4)
    for user in users:
        keys = await _data_keys(database, user.id)
        assert [k.destroyed_at is None for k in keys] == [False, True]
        await _assert_open(service, user, pairs[user.name])


async def test_shredding_makes_the_users_values_fail_with_a_destroyed_error(
    service: CredentialService, alice: UserInfo, bob: UserInfo, database: Database
) -> None:
    await _store(service, alice, ["gone-1", "gone-2"])
    legacy_id = await store_old_form(database, service._keyring, alice.id, "old-form", key_pair())
    bob_pairs = await _store(service, bob, ["kept"])

    shredded = await shred_user(database, alice.id)
    assert (shredded.data_keys_destroyed, shredded.old_form_credentials_deleted) == (1, 1)
    for name in ("gone-1", "gone-2"):
        with pytest.raises(
            DataKeyDestroyed, match=f"Credential '{name}' cannot be opened: its data key was destroyed"
        ):
            async with service.unsealed(alice.id, name):
                pass
    # What a backup of the key table taken now holds for alice: no key material at all.
    (tombstone,) = await _data_keys(database, alice.id)
    assert tombstone.sealed_key is None and tombstone.destroyed_at is not None
    # The old-form value could not be shredded through a data key: it is gone instead.
    assert legacy_id not in {row.id for row in await _credential_rows(database, alice.id)}
    await _assert_open(service, bob, bob_pairs)
    # Alice can start again: a new store gets a new data key.
    fresh = await _store(service, alice, ["new"])
    await _assert_open(service, alice, fresh)


async def test_old_form_migration_interrupted_half_way_resumes_and_finishes(
    service: CredentialService, alice: UserInfo, bob: UserInfo, database: Database
) -> None:
    keyring = service._keyring
    old_form: dict[str, Pairs] = {"alice": {}, "bob": {}}
    for i in range(7):
        user = alice if i % 2 == 0 else bob
        old_form[user.name][f"old-{i}"] = pair = key_pair()
        await store_old_form(database, keyring, user.id, f"old-{i}", pair)
    new_form = await _store(service, alice, ["new-0"])  # both forms side by side
    assert await old_form_report(database) == OldFormReport(credentials=7, users=2)
    for user in (alice, bob):
        await _assert_open(service, user, old_form[user.name])
    # A duplicate of an old-form pair is still refused (fingerprint under the master key).
    with pytest.raises(DuplicateKeyPair, match="'old-0'"):
        await service.store(alice.id, "dup", "paper", *old_form["alice"]["old-0"])

    def crash_after_two_batches(progress: RotationProgress) -> None:
        if progress.done >= 4:
            raise KeyboardInterrupt  # like Ctrl-C between batches

    with pytest.raises(KeyboardInterrupt):
        await migrate_old_form(database, keyring, batch_size=2, progress=crash_after_two_batches)
    assert (await old_form_report(database)).credentials == 3
    for user in (alice, bob):
        await _assert_open(service, user, old_form[user.name])

    resumed = await migrate_old_form(database, keyring, batch_size=2)
    assert (resumed.credentials_migrated, resumed.values_resealed, resumed.failed) == (3, 6, [])
    assert (await old_form_report(database)).done
    for user in (alice, bob):
        await _assert_open(service, user, old_form[user.name])
        (data_key,) = await _data_keys(database, user.id)
        assert {row.data_key_id for row in await _credential_rows(database, user.id)} == {data_key.id}
    await _assert_open(service, alice, new_form)
    with pytest.raises(DuplicateKeyPair, match="'old-2'"):
        await service.store(alice.id, "dup", "paper", *old_form["alice"]["old-2"])


async def test_rotate_moves_old_form_values_so_the_old_master_key_can_be_dropped(
    database: Database, alice: UserInfo
) -> None:
    key1, key2 = generate_key(), generate_key()
    old_ring = KeyRing.from_string(key1)
    pairs = {f"c{i}": key_pair() for i in range(3)}
    for name, pair in pairs.items():
        await store_old_form(database, old_ring, alice.id, name, pair)
    ring = KeyRing.from_string(f"{key2},{key1}")
    result = await rotate(database, ring, batch_size=2)
    assert (result.migration.credentials_migrated, result.rewrap.data_keys_rewrapped) == (3, 0)
    await _assert_open(CredentialService(database, KeyRing.from_string(key2)), alice, pairs)


async def test_values_under_a_missing_master_key_are_reported_not_lost(
    database: Database, alice: UserInfo
) -> None:
    key1 = generate_key()
    pairs = {"c0": key_pair(), "c1": key_pair()}
    for name, pair in pairs.items():
        await store_old_form(database, KeyRing.from_string(key1), alice.id, name, pair)
    result = await rotate(database, KeyRing.from_string(generate_key()))
    assert result.migration.credentials_migrated == 0
    assert sorted(f.split(" (")[0] for f in result.failed) == ["credential 'c0'", "credential 'c1'"]
    assert all("not in the key ring" in f for f in result.failed)
    fixed = KeyRing.from_string(f"{generate_key()},{key1}")
    assert (await rotate(database, fixed)).migration.credentials_migrated == 2
    await _assert_open(CredentialService(database, fixed), alice, pairs)


@pytest.fixture(scope="module")
def data_key_probe() -> Iterator[Callable[[str], dict[str, str]]]:
    """A probe process (tests/vault/data_key_probe.py) that both backends' tests ask in turn."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.vault.data_key_probe"],
        cwd=Path(__file__).resolve().parents[2],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    answers = process.stdout

    def ask(database_url: str) -> dict[str, str]:
        assert process.stdin is not None
        process.stdin.write(database_url + "\n")
        process.stdin.flush()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            line = pool.submit(answers.readline).result(timeout=120)
        assert line, f"the probe process ended (exit code {process.wait()})"
        answer: dict[str, str] = json.loads(line)
        return answer

    try:
        yield ask
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_the_unwrapped_data_key_is_unreachable_after_the_call(
    database_url: str, data_key_probe: Callable[[str], dict[str, str]]
) -> None:
    """No copy of a data key, no open data key and no cipher outlives an unseal: during the block,
    after it, after an error inside it and after a failed open (a traceback keeps frames alive).

    The heap walks run in a process holding only the vault (tests/vault/data_key_probe.py), one for
    both backends: in a test worker's heap the same walks took ~30 s per backend.
    """
    answer = data_key_probe(database_url)
    assert "failed" not in answer, answer["failed"]
    assert "no copy of the data key, open data key or cipher left" in answer["ok"]
