"""Fail closed: when the audit trail cannot be written, nothing is decrypted and no order is sent.

Attack stopped: an operator (or an attacker) who makes the audit table unwritable to act unrecorded.
The table is made unwritable with a trigger that raises on every insert, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from alpaca_vault.db import Database
from alpaca_vault.db.models import OrderIntent
from tests.fixtures.mcp_server import make_settings, paper_session, text_of

REFUSING_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER audit_refuses BEFORE INSERT ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit trail unwritable'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION audit_refuses() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit trail unwritable'; END $$",
        "CREATE TRIGGER audit_refuses BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_refuses()",
    ],
}
DROP_TRIGGER = {
    "sqlite": ["DROP TRIGGER audit_refuses"],
    "postgresql": ["DROP TRIGGER audit_refuses ON audit_events", "DROP FUNCTION audit_refuses()"],
}


async def _run(db: Database, statements: list[str]) -> None:
    async with db.engine.begin() as conn:
        for statement in statements:
            await conn.exec_driver_sql(statement)


async def test_an_unwritable_audit_trail_refuses_decrypts_and_orders_and_the_server_keeps_serving(
    database_url: str, tmp_path: Path, simulator: Any, sim_account: Any
) -> None:
    settings = make_settings(tmp_path / "data", simulator.base_url, database_url=database_url)
    db = Database.create(database_url)
    backend = db.engine.dialect.name
    try:
        async with paper_session(settings, sim_account) as client:
            assert not (await client.call_tool("alpaca_get_account", {})).is_error
            await _run(db, REFUSING_TRIGGER[backend])

            placed = await client.call_tool("alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1})
            assert placed.is_error
            assert "could not write the audit record for this call" in text_of(placed)
            assert "The order was NOT placed." in text_of(placed)
            assert simulator.orders(sim_account.api_key) == []  # nothing reached the broker
            async with db.session() as session:
                # The intent and its event are one transaction: no half-written intent either.
                assert (await session.execute(text("SELECT count(*) FROM order_intents"))).scalar_one() == 0

            account = await client.call_tool("alpaca_get_account", {})
            assert account.is_error and "nothing was decrypted" in text_of(account)
            # Calls that decrypt nothing are still answered; the server is up.
            assert not (await client.call_tool("list_credentials", {})).is_error

            await _run(db, DROP_TRIGGER[backend])
            again = await client.call_tool("alpaca_get_account", {})
            assert not again.is_error, text_of(again)
            placed = await client.call_tool("alpaca_place_order", {"symbol": "AAPL", "side": "buy", "qty": 1})
            assert not placed.is_error, text_of(placed)
            assert len(simulator.orders(sim_account.api_key)) == 1
            async with db.session() as session:
                states = (
                    await session.execute(select(OrderIntent.state, func.count()).group_by(OrderIntent.state))
                ).all()
            assert [tuple(row) for row in states] == [("accepted", 1)]
    finally:
        await db.dispose()
