"""Key rotation: re-seal under a new primary, in batches, resumable."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from alpaca_vault.db import Credential, Database
from alpaca_vault.vault import CredentialService, DuplicateKeyPair, KeyRing, UserInfo, generate_key
from alpaca_vault.vault.rotation import RotationProgress, count_pending, rotate
from tests.vault.conftest import key_pair


async def _seed(
    database: Database, key: str, user: UserInfo, n: int
) -> dict[str, tuple[SecretStr, SecretStr]]:
    service = CredentialService(database, KeyRing.from_string(key))
    pairs = {}
    for i in range(n):
        pairs[f"c{i}"] = key_pair()
        await service.store(user.id, f"c{i}", "paper", *pairs[f"c{i}"])
    return pairs


async def _assert_all_open(
    database: Database, ring: KeyRing, user: UserInfo, pairs: dict[str, tuple[SecretStr, SecretStr]]
) -> None:
    service = CredentialService(database, ring)
    for name, (api, secret) in pairs.items():
        async with service.unsealed(user.id, name) as opened:
            assert opened.api_key.get_secret_value() == api.get_secret_value()
            assert opened.secret_key.get_secret_value() == secret.get_secret_value()


async def _kids(database: Database) -> set[str]:
    async with database.session(readonly=True) as session:
        rows = (
            await session.execute(
                select(Credential.api_key, Credential.secret_key, Credential.key_fingerprint)
            )
        ).all()
    return (
        {r.api_key.kid for r in rows}
        | {r.secret_key.kid for r in rows}
        | {r.key_fingerprint.split(":")[0] for r in rows}
    )


async def test_rotate_then_drop_the_old_key(database: Database, alice: UserInfo) -> None:
    key1, key2 = generate_key(), generate_key()
    pairs = await _seed(database, key1, alice, 5)
    ring = KeyRing.from_string(f"{key2},{key1}")
    seen: list[int] = []
    result = await rotate(database, ring, batch_size=2, progress=lambda p: seen.append(p.done))
    assert (result.credentials_rotated, result.values_resealed, result.batches) == (5, 10, 3)
    assert result.failed == [] and result.already_current == 0
    assert seen == [2, 4, 5]
    assert await _kids(database) == {ring.primary_kid}
    only_new = KeyRing.from_string(key2)
    await _assert_all_open(database, only_new, alice, pairs)
    # Duplicates are still found after the fingerprints moved to the new key.
    with pytest.raises(DuplicateKeyPair, match="'c3'"):
        await CredentialService(database, only_new).store(alice.id, "again", "paper", *pairs["c3"])
    # Nothing left to do: a second run is a no-op.
    again = await rotate(database, ring)
    assert (again.credentials_rotated, again.already_current) == (0, 5)


async def test_interrupted_rotation_resumes_and_finishes(database: Database, alice: UserInfo) -> None:
    key1, key2 = generate_key(), generate_key()
    pairs = await _seed(database, key1, alice, 7)
    ring = KeyRing.from_string(f"{key2},{key1}")

    def crash_after_second_batch(progress: RotationProgress) -> None:
        if progress.done >= 4:
            raise KeyboardInterrupt  # like Ctrl-C between batches

    with pytest.raises(KeyboardInterrupt):
        await rotate(database, ring, batch_size=2, progress=crash_after_second_batch)
    assert await count_pending(database, ring) == 3
    await _assert_all_open(database, ring, alice, pairs)  # half-rotated: everything still opens

    resumed = await rotate(database, ring, batch_size=2)
    assert (resumed.credentials_rotated, resumed.already_current, resumed.values_resealed) == (3, 4, 6)
    assert await count_pending(database, ring) == 0
    await _assert_all_open(database, KeyRing.from_string(key2), alice, pairs)


async def test_values_under_a_missing_key_are_reported_not_lost(database: Database, alice: UserInfo) -> None:
    key1 = generate_key()
    pairs = await _seed(database, key1, alice, 2)
    dropped_too_early = KeyRing.from_string(generate_key())
    result = await rotate(database, dropped_too_early)
    assert result.credentials_rotated == 0
    assert len(result.failed) == 2
    assert sorted(f.split(" (")[0] for f in result.failed) == ["credential 'c0'", "credential 'c1'"]
    assert all("not in the key ring" in f for f in result.failed)
    # Adding the old key back lets the same command finish the job.
    fixed = KeyRing.from_string(f"{generate_key()},{key1}")
    assert (await rotate(database, fixed)).credentials_rotated == 2
    await _assert_all_open(database, fixed, alice, pairs)
