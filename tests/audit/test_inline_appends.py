"""The inline append's shortcut (one INSERT after this process's last known tail) never forks or gaps a chain.

On an SQLite file an append after one of this process's own is a single autocommit INSERT of seq+1
(audit/log.py); the primary key (user_id, seq) refuses it when anyone else appended in between, and the append
then reads the tail under the write lock. On PostgreSQL the same tests cover the async path.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import select

from alpaca_vault.audit import AuditLog, AuditUnavailable
from alpaca_vault.audit.chain import CLI, SERVER, STDIO
from alpaca_vault.db import Database
from alpaca_vault.db.models import AuditEvent
from tests.audit.conftest import Tenant


class _RolledBack(Exception):
    pass


async def _seqs(database: Database, tenant: Tenant) -> list[int]:
    async with database.session(tenant.user.id, readonly=True) as session:
        rows = await session.scalars(
            select(AuditEvent.seq).where(AuditEvent.user_id == tenant.user.id).order_by(AuditEvent.seq)
        )
        return list(rows)


async def test_an_append_after_someone_elses_chains_on_theirs(
    database: Database, audit_log: AuditLog, alice: Tenant
) -> None:
    # A second process on the same file (the CLI, a replica): a Database and connections of its own.
    elsewhere = Database.create(database.url)
    other = AuditLog(elsewhere, audit_log.keys)
    try:
        uid = alice.user.id
        first = await audit_log.append(uid, "credential.unseal", STDIO)
        second = await other.append(uid, "token.create", CLI)
        third = await audit_log.append(uid, "credential.unseal", STDIO)  # its known tail is seq 1: stale
        assert [first["seq"], second["seq"], third["seq"]] == [1, 2, 3]
        assert third["prev_hash"] == second["hash"]
        # An event in a transaction that rolls back leaves no trace in anyone's next seq.
        try:
            async with database.connection(uid) as conn:
                await audit_log.append(uid, "credential.unseal", STDIO, session=conn)
                raise _RolledBack
        except _RolledBack:
            pass
        fourth = await audit_log.append(uid, "credential.unseal", STDIO)
        assert (fourth["seq"], fourth["prev_hash"]) == (4, third["hash"])
        report = await audit_log.as_owner().verify(uid)
        assert report.ok and report.events == 4, [str(p) for p in report.problems]
    finally:
        await elsewhere.dispose()


async def test_inline_async_and_foreign_appends_interleaved_stay_gap_free_and_verify(
    database: Database, audit_log: AuditLog, alice: Tenant, bob: Tenant
) -> None:
    elsewhere = Database.create(database.url)
    other = AuditLog(elsewhere, audit_log.keys)
    rng = random.Random(13)
    committed = {alice.user.id: 0, bob.user.id: 0}

    async def one(tenant: Tenant) -> None:
        uid = tenant.user.id
        kind = rng.choice(("inline", "inline", "foreign", "joined", "rolled_back"))
        await asyncio.sleep(0)
        if kind == "inline":
            await audit_log.append(uid, "credential.unseal", STDIO)
        elif kind == "foreign":
            await other.append(uid, "credential.unseal", SERVER)
        else:
            try:
                async with database.connection(uid) as conn:
                    await audit_log.append(uid, "order.intent", STDIO, session=conn)
                    if kind == "rolled_back":
                        raise _RolledBack
            except _RolledBack:
                return
        committed[uid] += 1

    try:
        await asyncio.gather(*(one(rng.choice((alice, bob))) for _ in range(120)))
        for tenant in (alice, bob):
            assert await _seqs(database, tenant) == list(range(1, committed[tenant.user.id] + 1))
        report = await audit_log.as_owner().verify()
        assert report.ok, [str(p) for p in report.problems]
        assert report.events == sum(committed.values())
    finally:
        await elsewhere.dispose()


async def test_an_append_waits_for_a_writer_of_this_process_without_holding_up_its_loop(
    database: Database, audit_log: AuditLog, alice: Tenant
) -> None:
    """The append tries again between turns of the loop (it used to wait on an aiosqlite worker thread,
    and under 32 concurrent HTTP clients some such waits ran into the busy timeout: bench/audit_cost.py)."""
    if not database.is_sqlite:
        pytest.skip(
            "SQLite only: PostgreSQL appends take a per-user advisory lock on a connection of their own"
        )
    uid = alice.user.id
    async with database.connection(uid) as holder:  # an async write transaction: it has the file's lock
        await holder.execute(select(AuditEvent.seq).limit(1))
        pending = asyncio.create_task(audit_log.append(uid, "credential.unseal", STDIO))
        for _ in range(10):
            await asyncio.sleep(0.01)  # the loop keeps running while the append waits
        assert not pending.done()
    row = await asyncio.wait_for(pending, timeout=5)
    assert row["seq"] == 1


async def test_an_append_to_a_file_that_cannot_be_written_fails_at_once(
    database: Database, audit_log: AuditLog, alice: Tenant
) -> None:
    """Only a busy file is worth waiting for: a read-only one refuses the call now (fail closed)."""
    if not database.is_sqlite:
        pytest.skip("SQLite only: the inline append and its retries exist on an SQLite file")
    uid = alice.user.id
    async with database.connection(uid) as conn:
        await conn.exec_driver_sql(
            "CREATE TRIGGER audit_read_only BEFORE INSERT ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit table is read-only'); END"
        )
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await audit_log.append(uid, "credential.unseal", STDIO)
    except AuditUnavailable:
        pass
    else:
        raise AssertionError("an append the database refuses must raise AuditUnavailable")
    assert loop.time() - started < 1.0  # not the five-second busy wait
