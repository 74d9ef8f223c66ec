"""Row-level security on a real PostgreSQL, checked with raw SQL as the application role.

The application's own ``user_id`` filters are one wall; these tests take them
away and talk SQL directly, as the role the server connects with, to show the
second wall holds on its own: another user's rows are invisible, unwritable
and undeletable, and without a user setting nothing is visible at all.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from alpaca_vault.accounts import AccountAdmin, hash_token
from alpaca_vault.audit import AuditLog, ChainKeys
from alpaca_vault.audit.chain import STDIO
from alpaca_vault.console.links import LinkError, LinkStore
from alpaca_vault.db import Database
from alpaca_vault.db.rls import (
    APPEND_ONLY_TABLES,
    TENANT_TABLES,
    MaintenanceNotPermitted,
    lookup_token,
    lookup_user_id,
    maintenance_session,
)
from alpaca_vault.guard.order_intents import OrderIntents
from alpaca_vault.guard.store import PolicyStore
from alpaca_vault.vault.credentials import CredentialService
from alpaca_vault.vault.keyring import KeyRing, generate_key
from tests.multiuser.conftest import RlsCluster, RlsDatabase, create_rls_database, drop_rls_database

pytestmark = pytest.mark.postgres

# The column that names a row's user, per tenant table.
OWNER_COLUMN = {
    "users": "id",
    "credentials": "user_id",
    "api_tokens": "user_id",
    "data_keys": "user_id",
    "audit_events": "user_id",
    "order_intents": "user_id",
    "trading_policies": "user_id",
    "one_time_links": "user_id",
}


@dataclass
class TwoTenants:
    app: Database
    owner: Database
    alice: uuid.UUID
    bob: uuid.UUID
    alice_token: str
    bob_token: str
    app_url: str


@pytest.fixture
async def tenants(rls_database: RlsDatabase, tmp_path: Path) -> AsyncIterator[TwoTenants]:
    """Two users' rows in a fresh database of this test's own: for the tests that write, or try to."""
    async with _two_tenants(rls_database, tmp_path) as two:
        yield two


@pytest.fixture(scope="module")
async def read_only_tenants(
    rls_cluster: RlsCluster, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TwoTenants]:
    """The same rows, one database for the module's tests that only read (they change no row, and
    each opens its own transaction): filling a database costs ~0.15 s of CPU a test."""
    database = await create_rls_database(rls_cluster)
    try:
        async with _two_tenants(database, tmp_path_factory.mktemp("keys")) as two:
            yield two
    finally:
        await drop_rls_database(rls_cluster, database)


@asynccontextmanager
async def _two_tenants(rls_database: RlsDatabase, key_dir: Path) -> AsyncIterator[TwoTenants]:
    owner = Database.create(rls_database.owner_url)
    app = Database.create(rls_database.app_url)
    admin = AccountAdmin(owner)
    alice = (await admin.add_user("alice")).id
    bob = (await admin.add_user("bob")).id
    alice_token = (await admin.create_token("alice")).token.get_secret_value()
    bob_token = (await admin.create_token("bob")).token.get_secret_value()
    # Credentials stored the way the server stores them: the vault, as the application role.
    keyring = KeyRing.load(generate_key(), key_dir)
    vault = CredentialService(app, keyring)
    intents = OrderIntents(app, AuditLog(app, ChainKeys.from_keyring(keyring)))
    for user, prefix in ((alice, "PKALICE"), (bob, "PKBOB")):
        for n in range(2):
            stored = await vault.store(
                user,
                f"cred-{n}",
                "paper",
                SecretStr(f"{prefix}{n:013d}"),
                SecretStr(f"secret-{prefix}-{n}" * 2),
            )
            # An order intent and its audit event, written as the application role writes them.
            await intents.record(user, stored.id, stored.name, f"coid-{n}", {"symbol": "AAPL"}, actor=STDIO)
        # A trading policy row per user, written as the CLI writes it (as the application role here).
        await PolicyStore(app).update(user, "cred-0", {"max_orders_per_day": 5})
    # #12: one-time links, issued the way the server issues them (as the application role).
    links = LinkStore(app)
    for user in (alice, bob):
        await links.issue(user, "key_entry", lifetime=timedelta(minutes=10), bound_to="cred-new")
    try:
        yield TwoTenants(app, owner, alice, bob, alice_token, bob_token, rls_database.app_url)
    finally:
        await app.dispose()
        await owner.dispose()


async def _owners(db: Database, user: uuid.UUID | None, table: str) -> list[uuid.UUID]:
    async with db.session(user) as session:
        rows = await session.execute(text(f"SELECT {OWNER_COLUMN[table]} FROM {table}"))
        return [row[0] for row in rows]


async def test_the_application_role_neither_owns_the_tables_nor_bypasses_rls(
    read_only_tenants: TwoTenants,
) -> None:
    tenants = read_only_tenants
    async with tenants.app.session() as session:
        role = (
            await session.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
        assert tuple(role) == (False, False)
        for table in TENANT_TABLES:
            flags = (
                await session.execute(
                    text(
                        "SELECT c.relrowsecurity, c.relforcerowsecurity, "
                        "pg_has_role(current_user, c.relowner, 'MEMBER') "
                        "FROM pg_class c WHERE c.oid = to_regclass(:table)"
                    ),
                    {"table": table},
                )
            ).one()
            assert tuple(flags) == (True, True, False), table


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_with_a_users_setting_raw_sql_sees_only_that_users_rows(
    read_only_tenants: TwoTenants, table: str
) -> None:
    tenants = read_only_tenants
    seen_by_alice = await _owners(tenants.app, tenants.alice, table)
    seen_by_bob = await _owners(tenants.app, tenants.bob, table)
    assert seen_by_alice and set(seen_by_alice) == {tenants.alice}
    assert seen_by_bob and set(seen_by_bob) == {tenants.bob}


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_without_a_setting_raw_sql_sees_no_rows(read_only_tenants: TwoTenants, table: str) -> None:
    tenants = read_only_tenants
    assert await _owners(tenants.app, None, table) == []
    # A connection that never ran set_config at all (current_setting is NULL, not ''): a new one,
    # as the shared engine's pooled connections have all set it once.
    fresh = Database.create(tenants.app_url)
    try:
        async with fresh.engine.connect() as conn:
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0
    finally:
        await fresh.dispose()


async def test_the_application_role_cannot_rewrite_audit_history_even_its_own(tenants: TwoTenants) -> None:
    # Attack: a compromised server edits or deletes its own user's audit events to hide an action.
    for statement in (
        "UPDATE audit_events SET action = 'credential.validate' WHERE user_id = :alice",
        "DELETE FROM audit_events WHERE user_id = :alice",
    ):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with tenants.app.session(tenants.alice) as session:
                await session.execute(text(statement), {"alice": tenants.alice})
    assert len(await _owners(tenants.app, tenants.alice, "audit_events")) == 2


@pytest.mark.parametrize("table", [t for t in TENANT_TABLES if t not in APPEND_ONLY_TABLES])
async def test_update_and_delete_aimed_at_another_users_rows_change_nothing(
    tenants: TwoTenants, table: str
) -> None:
    column = OWNER_COLUMN[table]
    async with maintenance_session(tenants.owner) as session:
        before = (await session.execute(text(f"SELECT * FROM {table} ORDER BY id"))).all()
    async with tenants.app.session(tenants.alice) as session:
        touched = await session.execute(
            text(f"UPDATE {table} SET created_at = now() - interval '1 year' WHERE {column} = :bob"),
            {"bob": tenants.bob},
        )
        assert touched.rowcount == 0
        removed = await session.execute(
            text(f"DELETE FROM {table} WHERE {column} = :bob"), {"bob": tenants.bob}
        )
        assert removed.rowcount == 0
        # Even with no WHERE at all, only alice's own rows are in reach (rolled back below).
        everything = await session.execute(text(f"UPDATE {table} SET created_at = created_at"))
        assert everything.rowcount == len(await _owners(tenants.app, tenants.alice, table))
    async with maintenance_session(tenants.owner) as session:
        after = (await session.execute(text(f"SELECT * FROM {table} ORDER BY id"))).all()
    assert after == before


async def test_rows_cannot_be_written_into_or_moved_to_another_user(tenants: TwoTenants) -> None:
    with pytest.raises(DBAPIError, match="row-level security"):
        async with tenants.app.session(tenants.alice) as session:
            await session.execute(
                text(
                    "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, created_at) "
                    "VALUES (:id, :bob, 'planted', :hash, 'avt_planted0', now())"
                ),
                {"id": uuid.uuid4(), "bob": tenants.bob, "hash": "0" * 64},
            )
    with pytest.raises(DBAPIError, match="row-level security"):
        async with tenants.app.session(tenants.alice) as session:
            await session.execute(text("UPDATE credentials SET user_id = :bob"), {"bob": tenants.bob})
    assert len(await _owners(tenants.app, tenants.bob, "credentials")) == 2
    assert len(await _owners(tenants.app, tenants.bob, "api_tokens")) == 1


async def test_the_maintenance_opt_in_is_the_owners_alone(read_only_tenants: TwoTenants) -> None:
    tenants = read_only_tenants
    # The application role setting app.maintenance itself gains nothing.
    async with tenants.app.session() as session:
        await session.execute(text("SELECT set_config('app.maintenance', 'on', true)"))
        assert (await session.execute(text("SELECT count(*) FROM credentials"))).scalar_one() == 0
    with pytest.raises(MaintenanceNotPermitted, match="owns the tables"):
        async with maintenance_session(tenants.app):
            pass
    # RLS is forced: the owner too sees nothing until it opts in.
    assert await _owners(tenants.owner, None, "credentials") == []
    async with maintenance_session(tenants.owner) as session:
        assert (await session.execute(text("SELECT count(*) FROM credentials"))).scalar_one() == 4


async def test_definer_lookups_return_one_tokens_fields_and_leave_no_opt_in_behind(
    read_only_tenants: TwoTenants,
) -> None:
    tenants = read_only_tenants
    async with tenants.app.session() as session:
        found = await lookup_token(session, hash_token(tenants.bob_token))
        assert found is not None and found.user_id == tenants.bob and found.user_active
        assert await lookup_token(session, hash_token(tenants.bob_token + "x")) is None
        assert await lookup_user_id(session, "alice") == tenants.alice
        assert await lookup_user_id(session, "mallory") is None
        # The functions switched the owner's opt-in on for their own query only.
        setting = (
            await session.execute(text("SELECT current_setting('app.maintenance', true)"))
        ).scalar_one()
        assert setting in ("", None)
        assert (await session.execute(text("SELECT count(*) FROM api_tokens"))).scalar_one() == 0


async def test_users_removal_cascades_to_credentials_and_tokens(tenants: TwoTenants) -> None:
    removed = await AccountAdmin(tenants.owner).remove_user("bob")
    assert (removed.credentials, removed.tokens) == (2, 1)
    async with maintenance_session(tenants.owner) as session:
        for table in ("credentials", "api_tokens"):
            owners = {row[0] for row in await session.execute(text(f"SELECT user_id FROM {table}"))}
            assert owners == {tenants.alice}, table


async def test_stdio_finds_and_creates_its_user_by_name_as_the_application_role(
    tenants: TwoTenants, tmp_path: Path
) -> None:
    vault = CredentialService(tenants.app, KeyRing.load(generate_key(), tmp_path))
    assert (await vault.ensure_user("alice")).id == tenants.alice
    carol = await vault.ensure_user("carol")
    assert (await vault.ensure_user("carol")).id == carol.id
    assert await _owners(tenants.app, carol.id, "users") == [carol.id]
    assert await _owners(tenants.app, None, "users") == []


async def test_migration_0002_downgrades_and_upgrades_again(rls_database: RlsDatabase) -> None:
    from alembic import command

    from alpaca_vault.db.migrate import make_config

    owner = Database.create(rls_database.owner_url)
    try:

        async def row_security() -> list[tuple[str, bool, bool]]:
            async with owner.engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                        "WHERE relname IN ('users', 'credentials', 'api_tokens') ORDER BY relname"
                    )
                )
                return [tuple(row) for row in rows]  # type: ignore[misc]

        assert {(f, g) for _, f, g in await row_security()} == {(True, True)}
        async with owner.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(make_config(connection=c), "0001"))
        assert {(f, g) for _, f, g in await row_security()} == {(False, False)}
        async with owner.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(make_config(connection=c), "head"))
        assert {(f, g) for _, f, g in await row_security()} == {(True, True)}
    finally:
        await owner.dispose()


async def test_a_link_is_found_by_its_hash_alone_and_then_only_within_its_users_rows(
    tenants: TwoTenants,
) -> None:
    # #12: the definer lookup answers one link's owner; everything after runs under RLS for that owner.
    links = LinkStore(tenants.app)
    issued = await links.issue(tenants.bob, "key_entry", lifetime=timedelta(minutes=10), bound_to="x")
    record = await links.find(issued.secret, "key_entry")
    assert record.user_id == tenants.bob and record.user_name == "bob"
    assert await links.get(tenants.alice, issued.id) is None  # alice's transaction cannot see bob's link
    with pytest.raises(LinkError) as refused:
        await links.find(issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B"), "key_entry")
    assert refused.value.reason == "unknown"
    async with tenants.app.session() as session:
        await session.execute(text("SELECT * FROM alpaca_vault_link_lookup(:h)"), {"h": "0" * 64})
        setting = (
            await session.execute(text("SELECT current_setting('app.maintenance', true)"))
        ).scalar_one()
        assert setting in ("", None)
        assert (await session.execute(text("SELECT count(*) FROM one_time_links"))).scalar_one() == 0
