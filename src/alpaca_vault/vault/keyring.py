"""Master keys: load, derive, seal, open, fingerprint.

Key encoding: base64url (no padding) of 32 random bytes, as printed by
``alpaca-vault keys generate``. A key's id (kid) is the first 8 hex characters
of SHA-256("alpaca-vault kid v1" || key), so the same key always has the same
kid; ``KID:KEY`` names a key explicitly. A ring is comma- (or newline-)
separated, primary first; the primary seals, every key opens.

Sources, first found wins: the ``encryption_keys`` string
(ALPACA_VAULT_ENCRYPTION_KEYS), else the file ``DATA_DIR/master.key``, refused
when group or others can read it. The file is created (mode 0600, its
directory 0700) only when the caller allows it: for the embedded SQLite vault,
never for a shared database, where each host would otherwise make its own key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from alpaca_vault.db.sealed import KID_PATTERN, SealedValue
from alpaca_vault.vault.aead import (
    AssociatedData,
    DecryptFailed,
    open_bytes_with,
    seal_bytes_with,
    seal_with,
)
from alpaca_vault.vault.errors import KeyRingError, SealedByNewerVersion, SealedValueDamaged, UnsealError

KEY_BYTES = 32
KEY_FILE_NAME = "master.key"
_KID_DOMAIN = b"alpaca-vault kid v1\x00"


def generate_key() -> str:
    """A new master key: base64url of 32 random bytes (43 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).rstrip(b"=").decode("ascii")


def key_id(raw: bytes) -> str:
    return hashlib.sha256(_KID_DOMAIN + raw).hexdigest()[:8]


def _derive(raw: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw)


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str
    cipher: AESGCM = field(repr=False)
    fingerprint_key: bytes = field(repr=False)
    audit_key: bytes = field(repr=False)


def _parse_key(entry: str, position: int, source: str) -> _Key:
    kid: str | None = None
    encoded = entry
    if ":" in entry:
        kid, encoded = entry.split(":", 1)
        if not KID_PATTERN.fullmatch(kid):
            raise KeyRingError(
                f"{source}: key #{position} has an invalid key id (use 1-32 letters, digits, '-' or '_')."
            )
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        # Never echo the entry: it may be a real key with a typo.
        raise KeyRingError(
            f"{source}: key #{position} is not a key made by `alpaca-vault keys generate` "
            f"(expected base64url of {KEY_BYTES} bytes, optionally as KID:KEY)."
        )
    return _Key(
        kid=kid or key_id(raw),
        cipher=AESGCM(_derive(raw, b"alpaca-vault v1 aes-256-gcm")),
        fingerprint_key=_derive(raw, b"alpaca-vault v1 key-fingerprint"),
        audit_key=_derive(raw, b"alpaca-vault v1 audit-chain"),
    )


class KeyRing:
    """Master keys by kid. The first is primary (seals); all of them open."""

    def __init__(self, keys: Sequence[_Key], source: str) -> None:
        if not keys:
            raise KeyRingError(f"{source}: no encryption keys given.")
        self._keys = {key.kid: key for key in keys}
        if len(self._keys) != len(keys):
            raise KeyRingError(f"{source}: the same key id appears twice; each key must be listed once.")
        self.primary_kid = keys[0].kid
        self.kids = [key.kid for key in keys]
        self.source = source

    @classmethod
    def from_string(cls, encryption_keys: str, source: str = "ALPACA_VAULT_ENCRYPTION_KEYS") -> KeyRing:
        entries = [e.strip() for e in encryption_keys.replace("\n", ",").split(",") if e.strip()]
        return cls([_parse_key(entry, i, source) for i, entry in enumerate(entries, 1)], source)

    @classmethod
    def load(cls, encryption_keys: str | None, data_dir: Path, *, create_key_file: bool = False) -> KeyRing:
        """From the keys string when given, else from ``data_dir/master.key``.

        ``create_key_file`` makes that file when it is missing: only for a database on this
        host (embedded SQLite). Replicas sharing a database that each made their own key
        would seal credentials the others cannot open.
        """
        if encryption_keys is not None and encryption_keys.strip():
            return cls.from_string(encryption_keys)
        path = data_dir / KEY_FILE_NAME
        if not create_key_file and not path.exists():
            raise KeyRingError(
                f"No master key: ALPACA_VAULT_ENCRYPTION_KEYS is not set and there is no key file {path}. "
                "With a shared database, set ALPACA_VAULT_ENCRYPTION_KEYS to the same keys on every "
                "replica; `alpaca-vault keys generate` makes one."
            )
        return cls.from_key_file(path, create=create_key_file)

    @classmethod
    def from_key_file(cls, path: Path, *, create: bool = False) -> KeyRing:
        if create and not path.exists():
            _create_key_file(path)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise KeyRingError(f"Key file {path} does not exist.") from None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyRingError(
                f"Key file {path} can be read by other users (mode {stat.S_IMODE(info.st_mode):04o}). "
                f"Run `chmod 600 {path}` and try again."
            )
        if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
            raise KeyRingError(
                f"Key file {path} belongs to another user; it must be owned by the server's user."
            )
        return cls.from_string(path.read_text(encoding="ascii", errors="replace"), source=f"key file {path}")

    def seal(self, plaintext: str, aad: AssociatedData) -> SealedValue:
        return seal_with(self._keys[self.primary_kid].cipher, self.primary_kid, plaintext, aad)

    def wrap(self, raw_key: bytes, aad: AssociatedData) -> SealedValue:
        """Seal a data key under the primary key (a ``v1`` token)."""
        return seal_bytes_with(self._keys[self.primary_kid].cipher, self.primary_kid, raw_key, aad)

    def unwrap(self, token: SealedValue, aad: AssociatedData) -> bytes:
        """Open a wrapped data key; raises UnsealError like :meth:`open`."""
        return self._open_bytes(token, aad)

    def open(self, token: SealedValue, aad: AssociatedData) -> str:
        """Decrypt; raises UnsealError (safe message) for an unknown kid or failed authentication."""
        return self._open_bytes(token, aad).decode("utf-8")

    def _open_bytes(self, token: SealedValue, aad: AssociatedData) -> bytes:
        if token.damaged:
            raise SealedValueDamaged(f"the stored value is damaged ({token.problem})")
        if token.newer_format:
            raise SealedByNewerVersion(token.version)
        if token.under_data_key:
            raise UnsealError("it is sealed under a data key, not directly under a master key")
        key = self._keys.get(token.kid)
        if key is None:
            raise UnsealError(
                f"it is sealed under key '{token.kid}', which is not in the key ring ({self.source}); "
                "add that key back (after the primary) to open it"
            )
        try:
            return open_bytes_with(key.cipher, token, aad)
        except DecryptFailed:
            raise UnsealError(
                f"authentication failed under key '{token.kid}': the value was altered, moved from "
                "another row or user, or the key with that id is not the one that sealed it"
            ) from None

    def fingerprint(self, api_key: str, kid: str | None = None) -> str:
        """``kid:hex`` keyed hash of an Alpaca key id: finds duplicates without decrypting."""
        key = self._keys[kid or self.primary_kid]
        digest = hmac.new(key.fingerprint_key, api_key.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{key.kid}:{digest}"

    def fingerprints(self, api_key: str) -> list[str]:
        """The fingerprint under every key in the ring (rows not yet rotated use older keys)."""
        return [self.fingerprint(api_key, kid) for kid in self.kids]

    def audit_keys(self) -> dict[str, bytes]:
        """The audit chain's MAC key under each kid (HKDF of the master key, used for nothing else)."""
        return {kid: key.audit_key for kid, key in self._keys.items()}

    def __repr__(self) -> str:
        return f"KeyRing(primary_kid={self.primary_kid!r}, kids={self.kids!r})"


def _create_key_file(path: Path) -> None:
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    # Write a private temporary file, then link it into place: a concurrent starter
    # either wins the link or reads the winner's complete file, never an empty one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(generate_key() + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
