"""AES-256-GCM with associated data that binds a ciphertext to where it lives."""

from __future__ import annotations

import functools
import os
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from alpaca_vault.db.sealed import NONCE_BYTES, TOKEN_VERSION, SealedValue

CREDENTIAL_PURPOSE = "alpaca-credential"
DATA_KEY_PURPOSE = "data-key"


@dataclass(frozen=True, slots=True)
class AssociatedData:
    """Where a sealed value lives. Decrypting it anywhere else fails authentication."""

    table: str
    column: str
    row_id: uuid.UUID
    user_id: uuid.UUID
    purpose: str = CREDENTIAL_PURPOSE

    def encode(self, version: str = TOKEN_VERSION) -> bytes:
        # Length-prefixed names (no separator ambiguity between table and column), then the
        # two ids as their fixed 16 bytes.
        return (
            _location_prefix(version, self.purpose, self.table, self.column)
            + self.row_id.bytes
            + self.user_id.bytes
        )

    @classmethod
    def for_credential(cls, column: str, row_id: uuid.UUID, user_id: uuid.UUID) -> AssociatedData:
        return cls(table="credentials", column=column, row_id=row_id, user_id=user_id)

    @classmethod
    def for_data_key(cls, data_key_id: uuid.UUID, user_id: uuid.UUID) -> AssociatedData:
        """A data key's wrapping: bound to its own row and its user (copied to another user, it fails)."""
        return cls(
            table="data_keys",
            column="sealed_key",
            row_id=data_key_id,
            user_id=user_id,
            purpose=DATA_KEY_PURPOSE,
        )


@functools.lru_cache(maxsize=64)
def _location_prefix(version: str, purpose: str, table: str, column: str) -> bytes:
    out = bytearray()
    for field in ("alpaca-vault", version, purpose, table, column):
        raw = field.encode("utf-8")
        out += len(raw).to_bytes(2, "big") + raw
    return bytes(out)


class DecryptFailed(Exception):
    """Authentication failed: wrong key, tampered value, or a value moved from elsewhere."""


def seal_with(
    cipher: AESGCM, kid: str, plaintext: str, aad: AssociatedData, version: str = TOKEN_VERSION
) -> SealedValue:
    return seal_bytes_with(cipher, kid, plaintext.encode("utf-8"), aad, version)


def seal_bytes_with(
    cipher: AESGCM, kid: str, plaintext: bytes, aad: AssociatedData, version: str = TOKEN_VERSION
) -> SealedValue:
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = cipher.encrypt(nonce, plaintext, aad.encode(version))
    return SealedValue(version=version, kid=kid, payload=nonce + ciphertext)


def open_with(cipher: AESGCM, token: SealedValue, aad: AssociatedData) -> str:
    return open_bytes_with(cipher, token, aad).decode("utf-8")


def open_bytes_with(cipher: AESGCM, token: SealedValue, aad: AssociatedData) -> bytes:
    try:
        return cipher.decrypt(token.nonce, token.ciphertext, aad.encode(token.version))
    except InvalidTag:
        raise DecryptFailed from None
