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


# --- #16 envelope encryption ---------------------------------------------------------------------


class DataKeyDestroyed(UnsealError):
    """The credential's values were sealed under a data key that has been destroyed (crypto-shredded).

    Facts: ``credential_name`` and ``destroyed_at``. Nothing can open the values again.
    """

    def __init__(self, credential_name: str, destroyed_at: object) -> None:
        self.credential_name = credential_name
        self.destroyed_at = destroyed_at
        when = destroyed_at.strftime("%Y-%m-%d %H:%M UTC") if hasattr(destroyed_at, "strftime") else "earlier"
        super().__init__(
            f"Credential '{credential_name}' cannot be opened: its data key was destroyed "
            f"(crypto-shredded) on {when}, so its keys are gone for good. Remove the credential "
            "and store the key pair again if it is still needed."
        )


# --- #10 item 8: damaged rows --------------------------------------------------------------------


class SealedValueDamaged(UnsealError):
    """A stored value is not a sealed token at all (truncated, edited, a stray write): no key opens it."""


class CredentialDamaged(SealedValueDamaged):
    """A credential whose stored keys (or its user's data key) are damaged. Facts: ``credential_name``.

    Nothing can open it again; deleting it and storing the key pair again is the way forward.
    """

    def __init__(self, credential_name: str, problem: str) -> None:
        self.credential_name = credential_name
        self.problem = problem
        super().__init__(
            f"Credential '{credential_name}' is damaged and cannot be opened: {problem}. No key can "
            "recover it; delete it and store the key pair again."
        )


class SealedByNewerVersion(UnsealError):
    """A stored value is in a token format a newer alpaca-vault wrote (a mixed-version rollout).

    Not damage: the value is intact, nothing is changed or put out of use; upgrading this replica
    (or serving from an upgraded one) opens it.
    """

    def __init__(self, version: str, what: str = "it") -> None:
        self.version = version
        super().__init__(
            f"{what} is sealed in token format '{version}', which a newer alpaca-vault wrote and this "
            "version does not know; nothing was changed. Upgrade alpaca-vault on this replica (or "
            "serve from an upgraded one) to open it"
        )


class DataKeyDamaged(SealedValueDamaged):
    """A user's current data key is damaged while credentials are still sealed under it.

    A new data key is not made behind the owner's back: that would leave those credentials for good
    (a backup of the ``data_keys`` row could still recover them). Facts: ``credentials`` (their names)
    and ``problem``.
    """

    def __init__(self, credentials: Sequence[str], problem: str) -> None:
        self.credentials = tuple(credentials)
        self.problem = problem
        names = ", ".join(f"'{n}'" for n in self.credentials[:20])
        more = f" and {len(self.credentials) - 20} more" if len(self.credentials) > 20 else ""
        super().__init__(
            f"This user's data key is damaged ({problem}), and {len(self.credentials)} credential(s) are "
            f"still sealed under it: {names}{more}. Nothing was stored or changed. To recover them, "
            "restore this user's data_keys row from a backup; otherwise the owner removes each of them "
            "(they cannot be opened) and stores the key pairs again: a new data key is made once no "
            "credential is left under the damaged one."
        )
