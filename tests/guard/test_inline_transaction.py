"""The guard's transaction on an SQLite file runs inline (db/inline.py), and falls back to aiosqlite when
the file is busy. Both paths take the same write lock (BEGIN IMMEDIATE) around the checks and the intent,
so a replica on each path cannot together pass a daily limit, and the audit chain stays whole.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select

from alpaca_vault.audit.chain import STDIO, ChainKeys
from alpaca_vault.audit.log import AuditLog
from alpaca_vault.broker.client import AlpacaClient
from alpaca_vault.broker.models import OrderRequest
from alpaca_vault.db import Database
from alpaca_vault.db.migrate import upgrade_database
from alpaca_vault.db.models import AuditEvent, OrderIntent
from alpaca_vault.guard.errors import PolicyRefused
from alpaca_vault.guard.intents import Intent
from alpaca_vault.guard.order_intents import OrderIntents
from alpaca_vault.guard.store import PolicyStore
from alpaca_vault.guard.wiring import build_guard
from alpaca_vault.tools.gate import ResolvedCredential, ToolCall
from alpaca_vault.vault.credentials import CredentialService
from alpaca_vault.vault.keyring import KeyRing

UNREACHABLE = "http://127.0.0.1:9"  # limit orders under a count limit need no market data


async def _place(db: Database, keyring: KeyRing, user_id: uuid.UUID, credential: ResolvedCredential,
                 sizes: range, start: threading.Barrier) -> list[str]:  # fmt: skip
    """Orders placed concurrently through one replica's guard, as the server wires it: 'placed' or the rule."""
    async with db.connection(user_id, readonly=True):
        pass  # the engine's connection opened before the start, so both replicas' orders overlap
    await asyncio.to_thread(start.wait)
    audit = AuditLog(db, ChainKeys.from_keyring(keyring))
    async with AlpacaClient(paper_url=UNREACHABLE, live_url=UNREACHABLE, data_url=UNREACHABLE) as broker:
        guard = build_guard(
            db, broker, CredentialService(db, keyring), audit, intents=OrderIntents(db, audit)
        )

        async def one(size: int) -> str:
            await asyncio.sleep(size % 10 * 0.004)  # spread over 40 ms, so the replicas' orders interleave
            coid = uuid.uuid4().hex
            order = OrderRequest(
                symbol="AAPL", side="buy", qty=Decimal(size), type="limit", limit_price=Decimal(10)
            )
            call = ToolCall("alpaca_place_order", Intent.PLACE, user_id, STDIO, {}, credential, order, coid)
            try:
                await guard.before_send(call)
            except PolicyRefused as refused:
                return ",".join(refused.rules)
            return "placed"

        try:
            return list(await asyncio.gather(*(one(size) for size in sizes)))
        finally:
            audit.close()


async def test_an_inline_and_an_async_replica_never_together_pass_a_daily_limit(
    tmp_path: Path, keyring: KeyRing
) -> None:
    path = tmp_path / "vault.db"
    inline_db = Database.create(f"sqlite+aiosqlite:///{path}")
    await upgrade_database(inline_db)
    vault = CredentialService(inline_db, keyring)
    user = await vault.ensure_user("alice")
    info = await vault.store(user.id, "paper-1", "paper", SecretStr("PK" + "A" * 14), SecretStr("s" * 30))
    credential = ResolvedCredential(info.id, info.name, "paper")
    await PolicyStore(inline_db).update(user.id, "paper-1", {"max_orders_per_day": 6})
    assert inline_db.inline_writer() is not None
    start = threading.Barrier(2)

    def other_replica() -> list[str]:
        async def run() -> list[str]:
            # The same file through a URI: no inline path, every statement through aiosqlite's thread.
            async_db = Database.create(f"sqlite+aiosqlite:///file:{path}?mode=rw&uri=true")
            assert async_db.inline_writer() is None
            try:
                return await _place(async_db, keyring, user.id, credential, range(101, 111), start)
            finally:
                await async_db.dispose()

        return asyncio.run(run())  # its own thread and event loop, as another process would have

    try:
        mine, theirs = await asyncio.gather(
            _place(inline_db, keyring, user.id, credential, range(1, 11), start),
            asyncio.to_thread(other_replica),
        )
        outcomes = mine + theirs
        assert outcomes.count("placed") == 6, outcomes
        assert all(o in ("placed", "max_orders_per_day") for o in outcomes), outcomes
        async with inline_db.session(user.id, readonly=True) as session:
            intents = await session.scalar(select(func.count()).select_from(OrderIntent))
            events = (await session.execute(select(AuditEvent.action))).scalars().all()
        assert intents == 6
        assert sorted(set(events) - {"credential.store", "policy.change"}) == [
            "guard.refused",
            "order.intent",
        ]
        assert events.count("order.intent") == 6 and events.count("guard.refused") == 14
        report = await AuditLog(inline_db, ChainKeys.from_keyring(keyring)).verify(user.id)
        assert report.ok, report.problems  # one gap-free chain, whichever path wrote each event
    finally:
        await inline_db.dispose()


async def test_a_busy_file_sends_the_guard_to_wait_for_the_lock_and_count_what_was_committed(
    tmp_path: Path, keyring: KeyRing
) -> None:
    """Deterministic: another writer holds the lock with an order that reaches the limit; the guard's
    inline attempt finds the file busy, waits on the async path, and then counts that order."""
    db = Database.create(f"sqlite+aiosqlite:///{tmp_path / 'vault.db'}")
    await upgrade_database(db)
    audit = AuditLog(db, ChainKeys.from_keyring(keyring))
    intents = OrderIntents(db, audit)
    try:
        vault = CredentialService(db, keyring)
        user = await vault.ensure_user("alice")
        info = await vault.store(user.id, "paper-1", "paper", SecretStr("PK" + "A" * 14), SecretStr("s" * 30))
        credential = ResolvedCredential(info.id, info.name, "paper")
        await PolicyStore(db).update(user.id, "paper-1", {"max_orders_per_day": 1})
        async with AlpacaClient(paper_url=UNREACHABLE, live_url=UNREACHABLE, data_url=UNREACHABLE) as broker:
            guard = build_guard(db, broker, vault, audit, intents=intents)
            order = OrderRequest(
                symbol="AAPL", side="buy", qty=Decimal(1), type="limit", limit_price=Decimal(10)
            )
            call = ToolCall(
                "alpaca_place_order", Intent.PLACE, user.id, STDIO, {}, credential, order, "second"
            )
            async with db.connection(user.id) as other:  # another replica, mid-transaction
                await intents.record_in(
                    other, user.id, info.id, info.name, "first", order.to_alpaca("first"), actor=STDIO
                )
                waiting = asyncio.create_task(guard.before_send(call))
                await asyncio.sleep(0.2)
                assert not waiting.done()  # it waits for the lock (it neither ran inline nor gave up)
            try:
                await waiting
            except PolicyRefused as refused:
                assert refused.rules == ["max_orders_per_day"]
            else:
                raise AssertionError("the order passed a daily limit another writer had just reached")
    finally:
        audit.close()
        await db.dispose()
