"""Vault test helpers: a service over the parametrized ``database`` and a user in it."""

from __future__ import annotations

import secrets
import uuid

import pytest
from pydantic import SecretStr
from sqlalchemy import insert

from alpaca_vault.db import Credential, Database
from alpaca_vault.db.models import utcnow
from alpaca_vault.vault import AssociatedData, CredentialService, KeyRing, UserInfo


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


async def store_old_form(
    database: Database, keyring: KeyRing, user_id: uuid.UUID, name: str, pair: tuple[SecretStr, SecretStr]
) -> uuid.UUID:
    """A credential as stored before envelope encryption: sealed directly under the master key, no data key."""
    row_id = uuid.uuid4()
    api, secret = (value.get_secret_value() for value in pair)
    now = utcnow()
    async with database.session(user_id) as session:
        await session.execute(
            insert(Credential).values(
                id=row_id,
                user_id=user_id,
                name=name,
                provider="alpaca",
                environment="paper",
                api_key=keyring.seal(api, AssociatedData.for_credential("api_key", row_id, user_id)),
                secret_key=keyring.seal(secret, AssociatedData.for_credential("secret_key", row_id, user_id)),
                key_fingerprint=keyring.fingerprint(api),
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )
    return row_id
