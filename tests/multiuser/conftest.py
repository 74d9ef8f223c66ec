"""Fixtures: a PostgreSQL database laid out as in production.

``rls_database`` makes a fresh database owned by a non-superuser owner role
(which ran the migrations, as `alpaca-vault db upgrade` would) with an
application role created by ``create_app_role``: not the owner, no
BYPASSRLS. The roles and a migrated template are made once per session
(``rls_cluster``); each test gets a copy of the template. The superuser of
the test cluster only creates and drops roles and databases, never runs a
query under test.

``deployment`` is parametrized over ``sqlite`` (one file, application
filters only) and ``postgres`` (``rls_database``: the server connects as the
application role, the admin as the owner).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy import make_url

from alpaca_vault.accounts import AccountAdmin
from alpaca_vault.db import Database
from alpaca_vault.db.migrate import upgrade, upgrade_database
from alpaca_vault.db.rls import create_app_role
from tests.fixtures.databases import migrated_sqlite_file
from tests.fixtures.postgres import _asyncpg_dsn, throwaway_cluster

T = TypeVar("T")


@dataclass(frozen=True)
class RlsDatabase:
    owner_url: str
    app_url: str
    owner_role: str
    app_role: str
    name: str = ""


def _as_role(url: str, database: str, role: str, password: str) -> str:
    return (
        make_url(url)
        .set(database=database, username=role, password=password)
        .render_as_string(hide_password=False)
    )


async def _admin(server_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, whether or not an event loop is running here."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass(frozen=True)
class RlsCluster:
    """Roles (cluster-wide) and a migrated template database owned by the owner role."""

    server_url: str
    owner_role: str
    owner_password: str
    app_role: str
    app_password: str
    template: str


@pytest.fixture(scope="session")
def rls_cluster(postgres_url: str) -> Iterator[RlsCluster]:
    suffix = uuid.uuid4().hex[:10]
    cluster = RlsCluster(
        server_url=postgres_url,
        owner_role=f"av_owner_{suffix}",
        owner_password=secrets.token_hex(12),
        app_role=f"av_app_{suffix}",
        app_password=secrets.token_hex(12),
        template=f"av_rls_template_{suffix}",
    )

    async def setup() -> None:
        await _admin(
            postgres_url,
            f"CREATE ROLE {cluster.owner_role} LOGIN PASSWORD '{cluster.owner_password}'",
            f'CREATE DATABASE "{cluster.template}" OWNER {cluster.owner_role}',
        )
        # Migrated by the owner, exactly as `alpaca-vault db upgrade` would be run in production.
        await upgrade(_as_role(postgres_url, cluster.template, cluster.owner_role, cluster.owner_password))
        # The cluster's superuser creates the login role (the owner need not have CREATEROLE).
        superuser = Database.create(
            make_url(postgres_url).set(database=cluster.template).render_as_string(hide_password=False)
        )
        try:
            await create_app_role(superuser, cluster.app_role, password=cluster.app_password)
        finally:
            await superuser.dispose()

    _run(setup())
    try:
        yield cluster
    finally:
        if not throwaway_cluster():  # a throwaway cluster is deleted whole, roles included
            _run(
                _admin(
                    postgres_url,
                    f'DROP DATABASE IF EXISTS "{cluster.template}" WITH (FORCE)',
                    f"DROP OWNED BY {cluster.app_role}",
                    f"DROP ROLE IF EXISTS {cluster.app_role}",
                    f"DROP ROLE IF EXISTS {cluster.owner_role}",
                )
            )


async def create_rls_database(rls_cluster: RlsCluster) -> RlsDatabase:
    """A fresh copy of the template (tables, policies, functions and grants included)."""
    name = f"av_rls_{uuid.uuid4().hex[:12]}"
    await _admin(
        rls_cluster.server_url,
        f'CREATE DATABASE "{name}" TEMPLATE "{rls_cluster.template}" OWNER {rls_cluster.owner_role} '
        "STRATEGY FILE_COPY",
    )
    return RlsDatabase(
        owner_url=_as_role(rls_cluster.server_url, name, rls_cluster.owner_role, rls_cluster.owner_password),
        app_url=_as_role(rls_cluster.server_url, name, rls_cluster.app_role, rls_cluster.app_password),
        owner_role=rls_cluster.owner_role,
        app_role=rls_cluster.app_role,
        name=name,
    )


async def drop_rls_database(rls_cluster: RlsCluster, database: RlsDatabase) -> None:
    if not throwaway_cluster():  # a throwaway cluster is deleted whole at session end
        await _admin(rls_cluster.server_url, f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


@pytest.fixture
async def rls_database(rls_cluster: RlsCluster) -> AsyncIterator[RlsDatabase]:
    """A fresh copy of the template for this test."""
    database = await create_rls_database(rls_cluster)
    try:
        yield database
    finally:
        await drop_rls_database(rls_cluster, database)


@dataclass
class Deployment:
    """One vault database as a multi-user deployment sees it.

    ``admin_url`` is what the operator's `users`/`tokens` commands use (the table owner on
    PostgreSQL); ``server_url`` is what `serve` connects with (the application role).
    """

    backend: str
    admin_url: str
    server_url: str
    admin_db: Database

    @property
    def admin(self) -> AccountAdmin:
        return AccountAdmin(self.admin_db)

    async def user_with_token(self, name: str, **token_options: Any) -> str:
        await self.admin.add_user(name)
        issued = await self.admin.create_token(name, **token_options)
        return issued.token.get_secret_value()


@pytest.fixture(params=["sqlite", "postgres"])
def deployment_urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str]:
    """(backend, admin URL, server URL). Sync, so the PostgreSQL cluster starts outside any event loop."""
    if request.param == "sqlite":
        url = migrated_sqlite_file(tmp_path / "vault.db")
        return request.param, url, url
    rls: RlsDatabase = request.getfixturevalue("rls_database")
    return request.param, rls.owner_url, rls.app_url


@asynccontextmanager
async def opened_deployment(deployment_urls: tuple[str, str, str]) -> AsyncIterator[Deployment]:
    backend, admin_url, server_url = deployment_urls
    db = Database.create(admin_url)
    try:
        await upgrade_database(db)
        yield Deployment(backend, admin_url, server_url, db)
    finally:
        await db.dispose()


@pytest.fixture
async def deployment(deployment_urls: tuple[str, str, str]) -> AsyncIterator[Deployment]:
    async with opened_deployment(deployment_urls) as opened:
        yield opened


def shared_deployment_urls(request: pytest.FixtureRequest, directory: Path) -> tuple[str, str, str]:
    """``deployment_urls`` for a fixture of wider scope (a module's): (backend, admin URL, server URL)."""
    if request.param == "sqlite":
        url = migrated_sqlite_file(directory / "vault.db")
        return request.param, url, url
    cluster: RlsCluster = request.getfixturevalue("rls_cluster")
    rls = _run(create_rls_database(cluster))
    request.addfinalizer(lambda: _run(drop_rls_database(cluster, rls)))
    return request.param, rls.owner_url, rls.app_url
