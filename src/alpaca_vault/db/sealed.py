"""The sealed column type: stores and parses encrypted tokens, never decrypts.

A token is ``<form>.<key id>.<base64url(nonce || ciphertext || tag)>``; the
form says which kind of key sealed it, the key id which one:

* ``v1.<kid>.``: sealed directly under the master key ``kid``. Users' data
  keys are stored in this form; so were credential values before envelope
  encryption (the old form, still opened until ``keys migrate`` moves them).
* ``v2.<data key id>.``: sealed under a user's data key (its id as 32 hex
  digits); that data key is itself a ``v1`` token in ``data_keys``.

So a key ring or a data key can open it, and rotation and migration can find
values not yet where they should be, without trying to decrypt anything.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect, Text
from sqlalchemy.types import TypeDecorator

TOKEN_VERSION = "v1"  # noqa: S105 (a format tag, not a password): sealed under a master key
DATA_KEY_TOKEN_VERSION = "v2"  # noqa: S105 (a format tag): sealed under a user's data key
TOKEN_VERSIONS = (TOKEN_VERSION, DATA_KEY_TOKEN_VERSION)
NONCE_BYTES = 12
TAG_BYTES = 16
# Key ids are short, URL-safe and contain no dot (the token's separator).
KID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_DATA_KEY_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_PAYLOAD_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
# A format tag this version does not know but a later one may write (``v3``...): not damage.
_FUTURE_VERSION_PATTERN = re.compile(r"^v[0-9]{1,3}$")


class MalformedToken(ValueError):
    """A stored value is not a well-formed sealed token (never includes the value itself)."""


@dataclass(frozen=True, slots=True)
class SealedValue:
    """A parsed sealed token. ``payload`` is nonce || ciphertext || GCM tag.

    ``kid`` names the sealing key: a master key id (``v1``) or a data key id in hex (``v2``).
    """

    version: str
    kid: str
    payload: bytes

    def __post_init__(self) -> None:
        if self.version not in TOKEN_VERSIONS:
            # Never quoted: a damaged row could hold anything, a plaintext secret included.
            raise MalformedToken("unsupported sealed token version")
        pattern = _DATA_KEY_ID_PATTERN if self.version == DATA_KEY_TOKEN_VERSION else KID_PATTERN
        if not pattern.fullmatch(self.kid):
            raise MalformedToken("sealed token has an invalid key id")
        if len(self.payload) < NONCE_BYTES + TAG_BYTES:
            raise MalformedToken("sealed token payload is too short")

    @property
    def damaged(self) -> bool:
        """True for a :class:`DamagedValue`: what was stored is not a sealed token at all."""
        return False

    @property
    def problem(self) -> str | None:
        """What is wrong with a damaged value (never its content); None for a sound one."""
        return None

    @property
    def newer_format(self) -> bool:
        """True for a :class:`NewerFormatValue`: sealed by a later alpaca-vault in a format this one lacks."""
        return False

    @property
    def under_data_key(self) -> bool:
        """True for the envelope form (sealed under a user's data key), False for the old master-key form."""
        return self.version == DATA_KEY_TOKEN_VERSION

    @property
    def nonce(self) -> bytes:
        return self.payload[:NONCE_BYTES]

    @property
    def ciphertext(self) -> bytes:
        """Ciphertext followed by the GCM tag, as AESGCM expects it."""
        return self.payload[NONCE_BYTES:]

    def to_token(self) -> str:
        encoded = base64.urlsafe_b64encode(self.payload).rstrip(b"=").decode("ascii")
        return f"{self.version}.{self.kid}.{encoded}"

    @classmethod
    def parse(cls, token: str) -> SealedValue:
        parts = token.split(".")
        if len(parts) != 3:
            raise MalformedToken("not a sealed token (expected version.kid.payload)")
        version, kid, encoded = parts
        if version not in TOKEN_VERSIONS and _FUTURE_VERSION_PATTERN.fullmatch(version):
            return NewerFormatValue.found(version)
        if not _PAYLOAD_PATTERN.fullmatch(encoded):
            raise MalformedToken("sealed token payload is not base64url")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise MalformedToken("sealed token payload is not base64url") from None
        return cls(version=version, kid=kid, payload=payload)

    def __repr__(self) -> str:
        # Ciphertext is not secret, but it has no business in logs or errors either.
        return f"SealedValue(version={self.version!r}, kid={self.kid!r}, payload=<{len(self.payload)} bytes>)"


@dataclass(frozen=True, slots=True, repr=False)
class DamagedValue(SealedValue):
    """What loading a stored value gives when it is not a well-formed sealed token (#10, item 8).

    One damaged row must not break every read of its table: listing, deleting and rotating the
    user's other rows load it too. So the column loads it as this marker instead of raising; every
    opener refuses it (``UnsealError``, naming the problem, never the stored text), and it can
    never be written back.
    """

    reason: str = "not a sealed token"

    def __post_init__(self) -> None:
        pass  # it is what was found: nothing to validate

    @classmethod
    def found(cls, reason: str) -> DamagedValue:
        return cls(version="", kid="", payload=b"", reason=reason)

    @property
    def damaged(self) -> bool:
        return True

    @property
    def problem(self) -> str | None:
        return self.reason

    @property
    def under_data_key(self) -> bool:
        return False

    def to_token(self) -> str:
        raise MalformedToken(f"a damaged sealed value cannot be stored again ({self.reason})")

    def __repr__(self) -> str:
        return f"DamagedValue(reason={self.reason!r})"


@dataclass(frozen=True, slots=True, repr=False)
class NewerFormatValue(SealedValue):
    """A token in a format this version does not know, such as ``v3``: a newer alpaca-vault wrote it.

    During a mixed-version rollout an older replica reads what a newer one sealed. That is not
    damage: the value is intact and the newer version opens it. So it is neither listed as damaged
    nor ever put out of use; every opener refuses it with ``SealedByNewerVersion`` (upgrade this
    replica), and this version never writes it back. Only the format tag is kept (``v`` and at most
    three digits), never the rest of the stored text.
    """

    def __post_init__(self) -> None:
        pass  # what a later version wrote: this one cannot say what is valid in it

    @classmethod
    def found(cls, version: str) -> NewerFormatValue:
        return cls(version=version, kid="", payload=b"")

    @property
    def newer_format(self) -> bool:
        return True

    @property
    def under_data_key(self) -> bool:
        return False

    def to_token(self) -> str:
        raise MalformedToken(f"a value in the newer format {self.version} cannot be stored by this version")

    def __repr__(self) -> str:
        return f"NewerFormatValue(version={self.version!r})"


class SealedToken(TypeDecorator[SealedValue]):
    """A text column holding a sealed token; Python side is a :class:`SealedValue`.

    Binding validates the shape (a plaintext string is refused, so a bug can
    never write a secret in the clear); loading parses; nothing decrypts.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, SealedValue):
            # Never echo the value: it could be a plaintext secret.
            raise TypeError(f"sealed column takes a SealedValue, not {type(value).__name__}")
        return value.to_token()

    def process_result_value(self, value: Any, dialect: Dialect) -> SealedValue | None:
        if value is None:
            return None
        try:
            return SealedValue.parse(str(value))
        except MalformedToken as exc:
            return DamagedValue.found(str(exc))
