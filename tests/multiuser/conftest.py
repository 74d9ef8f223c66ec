"""Fixtures: a PostgreSQL database laid out as in production.

``rls_database`` makes a fresh database owned by a non-superuser owner role
(which runs the migrations, as `alpaca-vault db upgrade` would) and an
application role created with ``create_app_role``: not the owner, no
BYPASSRLS. The superuser of the test cluster is used only to create and drop
the roles and the database, never to run a query under test.

``deployment`` is parametrized over ``sqlite`` (one file, application
filters only) and ``postgres`` (``rls_database``: the server connects as the
application role, the admin as the owner).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import make_url

from alpaca_vault.db import Database
from alpaca_vault.db.migrate import upgrade, upgrade_database
from alpaca_vault.db.rls import create_app_role
from alpaca_vault.server.auth import AccountAdmin
from tests.fixtures.postgres import _asyncpg_dsn


@dataclass(frozen=True)
class RlsDatabase:
    owner_url: str
    app_url: str
    owner_role: str
    app_role: str


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


@pytest.fixture
async def rls_database(postgres_url: str) -> AsyncIterator[RlsDatabase]:
    suffix = uuid.uuid4().hex[:10]
    name, owner, app = f"av_rls_{suffix}", f"av_owner_{suffix}", f"av_app_{suffix}"
    owner_password, app_password = secrets.token_hex(12), secrets.token_hex(12)
    await _admin(
        postgres_url,
        f"CREATE ROLE {owner} LOGIN PASSWORD '{owner_password}'",
        f'CREATE DATABASE "{name}" OWNER {owner}',
    )
    try:
        owner_url = _as_role(postgres_url, name, owner, owner_password)
        await upgrade(owner_url)
        # The cluster's superuser creates the login role (the owner need not have CREATEROLE).
        superuser_db = Database.create(
            make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        )
        try:
            await create_app_role(superuser_db, app, password=app_password)
        finally:
            await superuser_db.dispose()
        yield RlsDatabase(
            owner_url=owner_url,
            app_url=_as_role(postgres_url, name, app, app_password),
            owner_role=owner,
            app_role=app,
        )
    finally:
        await _admin(
            postgres_url,
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f"DROP ROLE IF EXISTS {app}",
            f"DROP ROLE IF EXISTS {owner}",
        )


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
        url = f"sqlite+aiosqlite:///{tmp_path / 'vault.db'}"
        return request.param, url, url
    rls: RlsDatabase = request.getfixturevalue("rls_database")
    return request.param, rls.owner_url, rls.app_url


@pytest.fixture
async def deployment(deployment_urls: tuple[str, str, str]) -> AsyncIterator[Deployment]:
    backend, admin_url, server_url = deployment_urls
    db = Database.create(admin_url)
    try:
        await upgrade_database(db)
        yield Deployment(backend, admin_url, server_url, db)
    finally:
        await db.dispose()
