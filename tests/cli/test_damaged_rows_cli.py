"""A damaged credential through the real console script (#10, item 8), on SQLite and PostgreSQL.

The attack (or accident): one row's sealed value is overwritten with text that is not a sealed token.
Before, `credentials list`, `credentials remove` and `keys rotate` all died with a traceback for that
user, and the old master key could never be dropped. Now the row is listed as DAMAGED with the
commands that fix it, removable, and skipped and named by `keys rotate`, which finishes the rest.
"""

from __future__ import annotations

import json

from alpaca_vault.db import Database
from alpaca_vault.vault import CredentialService, KeyRing, generate_key
from tests.cli.conftest import Cli
from tests.vault.conftest import key_pair, store_old_form
from tests.vault.test_damaged_rows import LEAK, damage


async def test_damaged_credential_is_listed_skipped_by_rotation_and_removable(cli: Cli) -> None:
    old, new = generate_key(), generate_key()
    assert cli("db", "upgrade", ALPACA_VAULT_ENCRYPTION_KEYS=old).returncode == 0
    db = Database.create(cli.effective_url)
    try:
        service = CredentialService(db, KeyRing.from_string(old))
        owner = await service.ensure_user("local")
        broken = await service.store(owner.id, "broken", "paper", *key_pair())
        await service.store(owner.id, "fine", "paper", *key_pair())
        await damage(db, "credentials", "api_key", broken.id)
    finally:
        await db.dispose()

    # --data-keys: every credential is re-sealed, so the damaged one is met (and skipped).
    rotated = cli("keys", "rotate", "--data-keys", ALPACA_VAULT_ENCRYPTION_KEYS=f"{new},{old}")
    assert rotated.returncode == 0, rotated.stderr
    assert "Traceback" not in rotated.stderr
    assert "Rotated the data keys of 1 users: re-sealed 1 credentials" in rotated.stdout
    assert "Skipped 1 damaged row(s)" in rotated.stderr
    assert "credential broken of user local: " in rotated.stderr
    assert "credentials remove broken --user local" in rotated.stderr
    assert "credentials add broken --environment paper|live --user local" in rotated.stderr
    assert "Every other data key is now under the primary key" in rotated.stdout
    assert "Keep the older master keys in the ring" in rotated.stdout and "audit verify" in rotated.stdout
    assert LEAK not in rotated.stdout + rotated.stderr

    # The old key is dropped: the damaged row needed none of it, the sound one opens under the new key.
    listed = cli("credentials", "list", ALPACA_VAULT_ENCRYPTION_KEYS=new)
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr
    assert "DAMAGED" in listed.stdout
    assert "Credential 'broken' is damaged" in listed.stdout
    assert "credentials remove broken" in listed.stdout
    as_json = cli("credentials", "list", "--json", ALPACA_VAULT_ENCRYPTION_KEYS=new)
    statuses = {c["name"]: c["status"] for c in json.loads(as_json.stdout)}
    assert statuses == {"broken": "damaged", "fine": "ok"}
    assert LEAK not in listed.stdout + as_json.stdout

    removed = cli("credentials", "remove", "broken", ALPACA_VAULT_ENCRYPTION_KEYS=new)
    assert removed.returncode == 0, removed.stderr
    assert "Removed credential 'broken'." in removed.stdout


async def test_dropping_a_key_still_needed_makes_doctor_name_the_rows_and_not_the_damaged_one(
    cli: Cli,
) -> None:
    # The operator drops the old master key before rotating: doctor names which rows still need it;
    # a damaged row needs no key and is counted on its own line, not as a row needing a key.
    old, new = generate_key(), generate_key()
    assert cli("db", "upgrade", ALPACA_VAULT_ENCRYPTION_KEYS=old).returncode == 0
    db = Database.create(cli.effective_url)
    try:
        service = CredentialService(db, KeyRing.from_string(old))
        owner = await service.ensure_user("local")
        await service.store(owner.id, "fine", "paper", *key_pair())
        bob = await service.ensure_user("bob")
        ring = KeyRing.from_string(old)
        broken = await store_old_form(db, ring, bob.id, "broken", key_pair())  # directly under the master key
        await damage(db, "credentials", "api_key", broken)
    finally:
        await db.dispose()
    report = cli("doctor", "--json", ALPACA_VAULT_ENCRYPTION_KEYS=new)
    assert "Traceback" not in report.stderr
    checks = {c["check"]: c for c in json.loads(report.stdout)["checks"]}
    sealed = checks["sealed values"]
    assert sealed["status"] == "fail"
    assert "needed by the data key of user 'local', credential 'broken' of user 'bob'" in sealed["message"]
    assert "add the missing key" in sealed["fix"]
    assert checks["damaged values"]["status"] == "warn"
    assert checks["damaged values"]["message"].startswith("1 stored value(s) are not sealed values at all")
