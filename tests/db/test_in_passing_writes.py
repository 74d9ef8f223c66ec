"""Writes the event loop's thread makes on an SQLite file never wait: bookkeeping that finds the file's
write lock held is skipped (and made by a later call), and WAL checkpoints run on a thread of their own.

The attack these name: a slow or stuck writer (another replica, a CLI command, a long transaction)
holding the vault file. Before, a credential open and a token check waited up to the 5 s busy timeout
for their last-use bookkeeping, and a credential open then failed as an internal error.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from alpaca_vault.accounts import AccountAdmin
from alpaca_vault.accounts.tokens import TokenAuthenticator
from alpaca_vault.audit import AuditLog, ChainKeys
from alpaca_vault.audit.chain import STDIO
from alpaca_vault.db import Credential, Database
from alpaca_vault.db.checkpoint import CHECKPOINT_EVERY_COMMITS
from alpaca_vault.db.engine import sqlite_path
from alpaca_vault.db.models import ApiToken
from alpaca_vault.vault import CredentialService, KeyRing
from tests.vault.conftest import key_pair

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@contextmanager
def write_lock_held_elsewhere(database: Database) -> Iterator[None]:
    """Another connection (as another process would) holds the file's write lock."""
    path = sqlite_path(database.url)
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


async def _last_used(database: Database, table: type, row_id: uuid.UUID) -> object:
    async with database.session(readonly=True) as session:
        return await session.scalar(select(table.last_used_at).where(table.id == row_id))  # type: ignore[attr-defined]


async def test_a_credential_opens_at_once_while_another_writer_holds_the_file(
    database: Database, keyring: KeyRing
) -> None:
    service = CredentialService(database, keyring)
    alice = await service.ensure_user("alice")
    api, secret = key_pair()
    stored = await service.store(alice.id, "main", "paper", api, secret)

    with write_lock_held_elsewhere(database):
        started = time.monotonic()
        async with service.unsealed(alice.id, "main") as opened:
            assert opened.api_key.get_secret_value() == api.get_secret_value()
            assert opened.info.last_used_at is None  # the bookkeeping was skipped, not waited for
        assert time.monotonic() - started < 2  # the busy timeout is 5 s: nothing waited for it
    assert await _last_used(database, Credential, stored.id) is None

    async with service.unsealed(alice.id, "main") as opened:  # the file is free: recorded now
        assert opened.info.last_used_at is not None
    assert await _last_used(database, Credential, stored.id) is not None


async def test_a_token_is_accepted_at_once_while_another_writer_holds_the_file(database: Database) -> None:
    admin = AccountAdmin(database)
    await admin.add_user("alice")
    created = await admin.create_token("alice", name="laptop")
    token = created.token.get_secret_value()
    checker = TokenAuthenticator(database)

    with write_lock_held_elsewhere(database):
        started = time.monotonic()
        assert await checker.authenticate(token) is not None
        assert time.monotonic() - started < 2
    token_id = created.record.id
    assert await _last_used(database, ApiToken, token_id) is None

    # Skipped, so not counted as written: the next request in the same minute records it.
    assert await checker.authenticate(token) is not None
    assert await _last_used(database, ApiToken, token_id) is not None


async def test_inline_commits_leave_checkpoints_to_a_thread_of_their_own(
    database: Database, keyring: KeyRing
) -> None:
    service = CredentialService(database, keyring)
    alice = await service.ensure_user("alice")
    log = AuditLog(database, ChainKeys.from_keyring(keyring))
    await log.append(alice.id, "credential.unseal", STDIO)
    # The event loop's thread never checkpoints inside a commit (that is where the fsyncs are).
    assert database.write_inline(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()) == (0,)
    writer = database.inline_writer()
    assert writer is not None
    assert writer.connections.connection().execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)

    checkpoints = database._checkpoints
    assert checkpoints is not None and checkpoints.checkpoints == 0

    async def appends_until_a_checkpoint(done_before: int) -> None:
        for _ in range(CHECKPOINT_EVERY_COMMITS):
            await log.append(alice.id, "credential.unseal", STDIO)
        for _ in range(300):  # the thread was woken; give it up to 3 s
            if checkpoints.checkpoints > done_before:
                break
            await asyncio.sleep(0.01)
        # The thread's own pass copied the appends' pages back into the file.
        assert checkpoints.checkpoints > done_before
        assert checkpoints.last_result is not None
        busy, frames, copied = checkpoints.last_result
        assert busy == 0 and frames > 0 and copied > 0

    await appends_until_a_checkpoint(0)
    # A database used again after dispose() (as the CLI's commands do) checkpoints again.
    await database.dispose()
    await appends_until_a_checkpoint(checkpoints.checkpoints)
    assert (await log.verify(alice.id)).ok
