"""Audit test helpers: an audit log and an order-intent store over the parametrized ``database``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from alpaca_vault.audit import AuditLog, ChainKeys
from alpaca_vault.db import Database
from alpaca_vault.guard.order_intents import OrderIntents
from alpaca_vault.vault import CredentialInfo, CredentialService, KeyRing, UserInfo
from tests.cli.conftest import cli  # noqa: F401 - the console-script fixture, used here too
from tests.multiuser.conftest import (  # noqa: F401 - multi-user deployments, used here too
    deployment,
    deployment_urls,
    rls_cluster,
    rls_database,
)


@dataclass
class Tenant:
    user: UserInfo
    credential: CredentialInfo


@pytest.fixture
def audit_log(database: Database, keyring: KeyRing) -> AuditLog:
    log = AuditLog(database, ChainKeys.from_keyring(keyring))
    return log


@pytest.fixture
def intents(database: Database, audit_log: AuditLog) -> OrderIntents:
    return OrderIntents(database, audit_log)


async def make_tenant(service: CredentialService, name: str) -> Tenant:
    user = await service.ensure_user(name)
    api, secret = f"PK{secrets.token_hex(8).upper()}", f"SK{secrets.token_urlsafe(30)}"
    credential = await service.store(user.id, "paper-1", "paper", SecretStr(api), SecretStr(secret))
    return Tenant(user, credential)


@pytest.fixture
async def alice(database: Database, keyring: KeyRing) -> Tenant:
    return await make_tenant(CredentialService(database, keyring), "alice")


@pytest.fixture
async def bob(database: Database, keyring: KeyRing) -> Tenant:
    return await make_tenant(CredentialService(database, keyring), "bob")
