"""Vault errors. Every message is safe to show anyone: names and facts, never secret material, never
ciphertext, and never the name of an MCP tool (tools/errors.py adds the agent's next step)."""

from __future__ import annotations

from collections.abc import Sequence


class VaultError(Exception):
    """Base class; ``str(error)`` is the user-facing message."""


class CredentialNotFound(VaultError):
    """No credential matches the reference (the message lists the available names).

    ``available``: the user's credential names (empty when none is stored); ``inactive``: when no
    reference was given, the names of the deactivated ones (there was no active one to default to).
    """

    def __init__(self, message: str, *, available: Sequence[str] = (), inactive: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.available = tuple(available)
        self.inactive = tuple(inactive)


class CredentialAmbiguous(VaultError):
    """No reference given and several active credentials exist."""


class CredentialExists(VaultError):
    """A credential with that name already exists for this user."""


class DuplicateKeyPair(VaultError):
    """The same Alpaca key pair is already stored for this user (the message names it)."""


class CredentialInactive(VaultError):
    """The credential is deactivated and cannot be opened."""


class InvalidCredentialInput(VaultError):
    """A name, environment or key value is not acceptable."""


class UnsealError(VaultError):
    """A sealed value could not be decrypted: wrong or missing key, tampered or moved value."""


class KeyRingError(VaultError):
    """The master keys are missing, malformed or unsafe to use."""


class UnsealedCredentialClosed(VaultError):
    """An ``UnsealedCredential`` was used after its ``unsealed()`` block ended."""
