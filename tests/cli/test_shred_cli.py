"""`alpaca-vault users remove NAME [--shred]`: the data key is destroyed first; other users untouched.

Attack stopped: a removed user's Alpaca keys recovered later from the database (or a copy of it
taken after the removal) by someone who also holds the master key.
"""

from __future__ import annotations

import base64
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select

from alpaca_vault.db import Database, DataKey
from alpaca_vault.vault import CredentialService, KeyRing
from tests.cli.conftest import Cli


async def _store(cli: Cli, ring: KeyRing) -> str:
    """alice and bob with one credential each; returns alice's wrapped data key as it is stored."""
    assert cli("db", "upgrade").returncode == 0
    db = Database.create(cli.effective_url)
    try:
        service = CredentialService(db, ring)
        for name in ("alice", "bob"):
            user = await service.ensure_user(name)
            await service.store(
                user.id,
                f"{name}-paper",
                "paper",
                SecretStr(f"PK{name.upper()}0000000001"),
                SecretStr("s" * 40),
            )
        alice = await service.find_user("alice")
        assert alice is not None
        async with db.session(alice.id) as session:
            sealed = await session.scalar(select(DataKey.sealed_key).where(DataKey.user_id == alice.id))
        assert sealed is not None
        return sealed.to_token()
    finally:
        await db.dispose()


def _files_hold(data_dir: Path, token: str) -> bool:
    payload = token.split(".")[2]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    blob = b"".join(p.read_bytes() for p in data_dir.glob("vault.db*"))
    return payload[:24].encode() in blob or raw[:24] in blob


async def test_users_remove_shred_destroys_the_key_and_leaves_other_users_alone(cli: Cli) -> None:
    key = cli.env.get("ALPACA_VAULT_ENCRYPTION_KEYS")
    ring = KeyRing.load(key, cli.data_dir, create_key_file=key is None)
    token = await _store(cli, ring)
    if cli.database_url is None:
        assert _files_hold(cli.data_dir, token)  # the probe works: the wrapped key is in the file

    result = cli("users", "remove", "alice", "--yes", "--shred")
    assert result.returncode == 0, result.stderr
    assert "Removed user 'alice' with 1 credential(s) and 0 token(s)." in result.stdout
    assert "Destroyed 1 data key(s) first" in result.stdout and "Freed space erased." in result.stdout
    assert "Backups taken before still hold them" in result.stderr
    assert "Traceback" not in result.stderr

    db = Database.create(cli.effective_url)
    try:
        async with db.session() as session:
            owners = (await session.scalars(select(DataKey.user_id))).all()
        service = CredentialService(db, ring)
        bob = await service.find_user("bob")
        assert bob is not None and list(owners) == [bob.id]
        async with service.unsealed(bob.id, "bob-paper") as opened:
            assert opened.api_key.get_secret_value() == "PKBOB0000000001"
    finally:
        await db.dispose()
    if cli.database_url is None:
        # Not even the freed pages of the SQLite file or its WAL hold alice's wrapped key any more.
        assert not _files_hold(cli.data_dir, token)

    unknown = cli("users", "remove", "nobody", "--yes", "--shred")
    assert unknown.returncode == 1 and "User 'nobody' not found" in unknown.stderr
