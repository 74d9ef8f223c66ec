"""Vault test helpers: a service over the parametrized ``database`` and a user in it."""

from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr

from alpaca_vault.db import Database
from alpaca_vault.vault import CredentialService, KeyRing, UserInfo


def key_pair(marker: str = "", prefix: str = "PK") -> tuple[SecretStr, SecretStr]:
    """A unique Alpaca-shaped pair (PK: paper, AK: live); ``marker`` is embedded so raw reads can search for it."""
    api = f"{prefix}{marker}{secrets.token_hex(8).upper()}"
    secret = f"SK{marker}{secrets.token_urlsafe(30)}"
    return SecretStr(api), SecretStr(secret)


@pytest.fixture
def service(database: Database, keyring: KeyRing) -> CredentialService:
    return CredentialService(database, keyring)


@pytest.fixture
async def alice(service: CredentialService) -> UserInfo:
    return await service.ensure_user("alice")


@pytest.fixture
async def bob(service: CredentialService) -> UserInfo:
    return await service.ensure_user("bob")
