"""The secret-handling domain: key ring + AEAD, credential lifecycle, decrypt on demand."""

# Re-exports resolve on first use (PEP 562): importing one light module, such as
# vault.exposure or vault.errors, must not pull in SQLAlchemy and the crypto stack.

from __future__ import annotations

from typing import TYPE_CHECKING

from alpaca_vault.lazy_exports import exports_on_first_use

if TYPE_CHECKING:
    from alpaca_vault.vault.aead import AssociatedData
    from alpaca_vault.vault.credential_types import CredentialInfo, UnsealedCredential, UserInfo
    from alpaca_vault.vault.credentials import CredentialService
    from alpaca_vault.vault.errors import (
        CredentialAmbiguous,
        CredentialExists,
        CredentialInactive,
        CredentialNotFound,
        DuplicateKeyPair,
        InvalidCredentialInput,
        KeyRingError,
        UnsealedCredentialClosed,
        UnsealError,
        VaultError,
    )
    from alpaca_vault.vault.exposure import exposed_values, exposure_scope, register_exposed
    from alpaca_vault.vault.keyring import KeyRing, generate_key

_EXPORTS = {
    "AssociatedData": "alpaca_vault.vault.aead",
    "CredentialAmbiguous": "alpaca_vault.vault.errors",
    "CredentialExists": "alpaca_vault.vault.errors",
    "CredentialInactive": "alpaca_vault.vault.errors",
    "CredentialInfo": "alpaca_vault.vault.credential_types",
    "CredentialNotFound": "alpaca_vault.vault.errors",
    "CredentialService": "alpaca_vault.vault.credentials",
    "DuplicateKeyPair": "alpaca_vault.vault.errors",
    "InvalidCredentialInput": "alpaca_vault.vault.errors",
    "KeyRing": "alpaca_vault.vault.keyring",
    "KeyRingError": "alpaca_vault.vault.errors",
    "UnsealError": "alpaca_vault.vault.errors",
    "UnsealedCredential": "alpaca_vault.vault.credential_types",
    "UnsealedCredentialClosed": "alpaca_vault.vault.errors",
    "UserInfo": "alpaca_vault.vault.credential_types",
    "VaultError": "alpaca_vault.vault.errors",
    "exposed_values": "alpaca_vault.vault.exposure",
    "exposure_scope": "alpaca_vault.vault.exposure",
    "generate_key": "alpaca_vault.vault.keyring",
    "register_exposed": "alpaca_vault.vault.exposure",
}

__all__ = [
    "AssociatedData",
    "CredentialAmbiguous",
    "CredentialExists",
    "CredentialInactive",
    "CredentialInfo",
    "CredentialNotFound",
    "CredentialService",
    "DuplicateKeyPair",
    "InvalidCredentialInput",
    "KeyRing",
    "KeyRingError",
    "UnsealError",
    "UnsealedCredential",
    "UnsealedCredentialClosed",
    "UserInfo",
    "VaultError",
    "exposed_values",
    "exposure_scope",
    "generate_key",
    "register_exposed",
]


__getattr__ = exports_on_first_use(__name__, _EXPORTS)
