"""The secret-handling domain: key ring + AEAD, credential lifecycle, decrypt on demand."""

from alpaca_vault.vault.aead import AssociatedData
from alpaca_vault.vault.credentials import (
    CredentialInfo,
    CredentialService,
    UnsealedCredential,
    UserInfo,
)
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
