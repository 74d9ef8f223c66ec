"""`alpaca-vault keys rotate` / `keys migrate` and `db upgrade` through the real console script."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from alpaca_vault.db import Database
from alpaca_vault.vault import CredentialService, KeyRing, generate_key
from alpaca_vault.vault.rotation import count_pending, old_form_report
from tests.cli.conftest import Cli, bulk_seal


async def _open_all(url: str, ring: KeyRing, user: str, expected: int, sample: int = 1) -> None:
    """Every credential is listed, and every ``sample``-th one opens with ``ring`` alone."""
    db = Database.create(url)
    try:
        service = CredentialService(db, ring)
        owner = await service.ensure_user(user)
        names = [c.name for c in await service.list(owner.id)]
        assert len(names) == expected
        assert await count_pending(db, ring) == 0
        for name in names[::sample]:
            async with service.unsealed(owner.id, name) as opened:
                number = name.split("-")[1]
                assert opened.secret_key.get_secret_value() == f"SKbulk{int(number):08d}"
    finally:
        await db.dispose()


async def _seed(cli: Cli, key: str, count: int) -> None:
    assert cli("db", "upgrade").returncode == 0
    db = Database.create(cli.effective_url)
    try:
        ring = KeyRing.from_string(key)
        owner = await CredentialService(db, ring).ensure_user("local")
        await bulk_seal(db, ring, owner.id, count)
    finally:
        await db.dispose()


async def test_rotate_then_drop_the_old_key(cli: Cli) -> None:
    key1, key2 = generate_key(), generate_key()
    await _seed(cli, key1, 5)  # the old form: sealed directly under the master key
    rotated = cli("keys", "rotate", "--batch-size", "2", ALPACA_VAULT_ENCRYPTION_KEYS=f"{key2},{key1}")
    assert rotated.returncode == 0, rotated.stderr
    assert "Moved 5 credentials from the old form to data keys." in rotated.stdout
    # The one data key was made under the new primary, so nothing needed re-wrapping.
    assert (
        f"Re-wrapped 0 data keys in 0 batches; 1 were already under key {KeyRing.from_string(key2).primary_kid}"
        in rotated.stdout
    )
    assert key1 not in rotated.stdout + rotated.stderr and key2 not in rotated.stdout + rotated.stderr
    # The old key stays for the audit trail (events signed under it), not for any value.
    assert "Every data key is now under the primary key." in rotated.stdout
    assert "Keep the older master keys in the ring" in rotated.stdout and "audit verify" in rotated.stdout
    await _open_all(cli.effective_url, KeyRing.from_string(key2), "local", 5)

    key3 = generate_key()
    again = cli("keys", "rotate", ALPACA_VAULT_ENCRYPTION_KEYS=f"{key3},{key2}")
    assert again.returncode == 0, again.stderr
    assert "Moved" not in again.stdout
    assert "Re-wrapped 1 data keys in 1 batches; 0 were already under key" in again.stdout
    await _open_all(cli.effective_url, KeyRing.from_string(key3), "local", 5)


async def test_migrate_then_rotate_data_keys(cli: Cli) -> None:
    key = generate_key()
    await _seed(cli, key, 3)
    migrated = cli("keys", "migrate", ALPACA_VAULT_ENCRYPTION_KEYS=key)
    assert migrated.returncode == 0, migrated.stderr
    assert (
        "Moved 3 credentials (6 sealed values) to data keys in 1 batches; 0 left in the old form."
        in migrated.stdout
    )
    rotated = cli("keys", "rotate", "--data-keys", "--user", "local", ALPACA_VAULT_ENCRYPTION_KEYS=key)
    assert rotated.returncode == 0, rotated.stderr
    assert (
        "Rotated the data keys of 1 users: re-sealed 3 credentials, destroyed 1 old data keys."
        in rotated.stdout
    )
    await _open_all(cli.effective_url, KeyRing.from_string(key), "local", 3)
    unknown = cli("keys", "rotate", "--data-keys", "--user", "nobody", ALPACA_VAULT_ENCRYPTION_KEYS=key)
    assert unknown.returncode == 1 and "No user named 'nobody'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


async def test_rotation_killed_half_way_resumes_and_finishes(tmp_path: Path) -> None:
    # SQLite only: the same interruption on both backends is covered in-process in tests/vault.
    cli = Cli(tmp_path / "data", None)
    key1, key2 = generate_key(), generate_key()
    total = 2000
    await _seed(cli, key1, total)
    ring = KeyRing.from_string(f"{key2},{key1}")
    db = Database.create(cli.effective_url)
    try:
        proc = cli.popen("keys", "rotate", "--batch-size", "1", ALPACA_VAULT_ENCRYPTION_KEYS=f"{key2},{key1}")
        pending = total
        while pending == total and proc.poll() is None:
            await asyncio.sleep(0.02)
            pending = await count_pending(db, ring)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "rotation finished before it could be killed"
        left = await count_pending(db, ring)
        assert 0 < left < total
    finally:
        await db.dispose()

    resumed = cli("keys", "rotate", "--batch-size", "500", ALPACA_VAULT_ENCRYPTION_KEYS=f"{key2},{key1}")
    assert resumed.returncode == 0, resumed.stderr
    assert f"Moved {left} credentials from the old form to data keys." in resumed.stdout
    assert f"1 were already under key {ring.primary_kid}" in resumed.stdout
    await _open_all(cli.effective_url, KeyRing.from_string(key2), "local", total, sample=50)


async def test_rotation_with_a_missing_old_key_fails_clearly_and_changes_nothing(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data", None)
    key1 = generate_key()
    await _seed(cli, key1, 2)
    result = cli("keys", "rotate", ALPACA_VAULT_ENCRYPTION_KEYS=generate_key())
    assert result.returncode == 1
    assert "2 values could not be opened and were left as they are" in result.stderr
    assert "not in the key ring" in result.stderr and "Traceback" not in result.stderr
    db = Database.create(cli.effective_url)
    try:
        # Still both in the old form under key 1, and no data key was made under the stranger key.
        assert (await old_form_report(db)).credentials == 2
        assert await count_pending(db, KeyRing.from_string(key1)) == 2
    finally:
        await db.dispose()
