"""The chain's MAC: what an event's hash covers, under which key, and who acted.

Each event's ``hash`` is HMAC-SHA256 over a canonical JSON of every field that
matters (user, seq, time, actor, action, credential, tool, details, kid) and
the previous event's hash. The key is derived from a master key of the key ring
(HKDF, its own purpose string) and named by ``kid`` on the event, so whoever can
write the database but holds no master key can neither forge nor re-chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

CHAIN_VERSION = "alpaca-vault audit v1"
GENESIS_HASH = "0" * 64

# Details are facts about an action, never its secrets: only these keys, only short scalars.
DETAIL_KEYS = frozenset(
    {
        "symbol",
        "side",
        "qty",
        "notional",
        "type",
        "time_in_force",
        "order_class",
        "limit_price",
        "stop_price",
        "trail",  # a replace's new trail (#14)
        "legs",  # a multi-leg order's legs, one "side ratio symbol [intent]" string each (#14)
        "replaces",  # the Alpaca order id a replace replaces (#14)
        "client_order_id",
        "alpaca_order_id",
        "order_id",
        "status",
        "error_status",
        "error_code",
        "error",
        "policy_rule",
        "outcome",
        "environment",
        "percentage",
        "count",
        "token_id",
        "token_name",
        "token_kind",  # agent (MCP) or console sign-in
        "user_name",
        "kid",
        "resealed",
        "repeat",
        "changes",
    }
)
MAX_DETAIL_TEXT = 200

ActorKind = Literal["stdio", "token", "cli", "console", "server"]


class KeySource(Protocol):
    """What the chain needs of a key ring (vault.keyring.KeyRing fits; audit/ does not import vault/)."""

    primary_kid: str

    def audit_keys(self) -> dict[str, bytes]: ...


@dataclass(frozen=True)
class ChainKeys:
    """The MAC keys by kid; the primary signs new events, every key verifies old ones."""

    primary_kid: str
    keys: Mapping[str, bytes] = field(repr=False)

    @classmethod
    def from_keyring(cls, keyring: KeySource) -> ChainKeys:
        return cls(keyring.primary_kid, keyring.audit_keys())


@dataclass(frozen=True)
class Actor:
    """Who acted: the local stdio user, a bearer token (id and name), the CLI, the console, or the server."""

    kind: ActorKind
    token_id: uuid.UUID | None = None
    token_name: str | None = None

    @classmethod
    def token(cls, token_id: uuid.UUID, name: str) -> Actor:
        return cls("token", token_id, name)

    def __str__(self) -> str:
        if self.kind == "token":
            return f"token:{self.token_id}:{self.token_name or ''}"
        return self.kind


STDIO = Actor("stdio")
CLI = Actor("cli")
CONSOLE = Actor("console")
SERVER = Actor("server")  # the reconciler, acting on its own at start-up and in the background


def clean_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """The details to store: known keys only, short scalars only (a programming error otherwise)."""
    cleaned: dict[str, Any] = {}
    for key, value in (details or {}).items():
        if key not in DETAIL_KEYS:
            raise ValueError(f"audit detail {key!r} is not a recorded field")
        if value is None or isinstance(value, bool | int):
            cleaned[key] = value
        elif isinstance(value, Decimal):
            cleaned[key] = format(value, "f")
        elif isinstance(value, str | uuid.UUID):
            cleaned[key] = str(value)[:MAX_DETAIL_TEXT]
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            cleaned[key] = [v[:MAX_DETAIL_TEXT] for v in value][:20]
        else:
            raise ValueError(f"audit detail {key!r} must be a short scalar, not {type(value).__name__}")
    return cleaned


# One encoder for every message: json.dumps with these options would build a new one per call.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_message(
    *,
    user_id: uuid.UUID,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    credential_id: uuid.UUID | None,
    credential_name: str | None,
    tool: str | None,
    details: Mapping[str, Any],
    kid: str,
    prev_hash: str,
) -> bytes:
    """The bytes an event's MAC covers: every field, in a fixed order, as compact sorted JSON."""
    return _CANONICAL_JSON.encode(
        [
            CHAIN_VERSION,
            str(user_id),
            seq,
            canonical_time(at),
            actor,
            action,
            None if credential_id is None else str(credential_id),
            credential_name,
            tool,
            dict(details),
            kid,
            prev_hash,
        ]
    ).encode("utf-8")


def event_mac(key: bytes, **fields: Any) -> str:
    """HMAC-SHA256 (hex) under ``key`` over ``canonical_message(**fields)``: what ``verify`` checks, with
    the standard library's HMAC (the append path signs the same bytes with ``EventSigner``)."""
    return hmac.new(key, canonical_message(**fields), hashlib.sha256).hexdigest()


# HMAC-SHA256's block size and its two key pads (RFC 2104), for EventSigner.
_SHA256_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))

# The repeated parts of the messages a process signs: bounded, since user and credential ids are open-ended.
_MAX_CACHED_PARTS = 4096
# actor, action, credential id and name, tool, kid: the fields between an event's time and its details.
MiddleParts = tuple[str, str, uuid.UUID | None, str | None, str | None, str]


class EventSigner:
    """``event_mac`` for the append path: the same bytes as ``canonical_message``, with the parts that
    repeat from one event to the next encoded once (a user's chain prefix, and the actor-to-kid middle of
    events without details, such as every ``credential.unseal``).

    Why: the append runs on every tool call, on the event loop's thread; encoding the whole message each
    time (two UUIDs to text, twelve items through the JSON encoder) was a third of the append's Python
    work. ``tests/audit/test_append_encoding.py`` holds it to ``event_mac`` byte for byte.
    """

    def __init__(self, key: bytes) -> None:
        # HMAC-SHA256 as RFC 2104 builds it (and the standard library's own pure-Python HMAC): SHA-256 of
        # the key padded with 0x36, then of the key padded with 0x5c over the inner digest. Both states are
        # keyed once; an event copies them. Why not ``hmac.HMAC.copy``: with OpenSSL 3 it duplicates a MAC
        # context (a provider lookup) and wraps it in a Python object, measured at about a sixth of the
        # append's time in a tool call; two SHA-256 copies cost a third of that. ``event_mac`` (the
        # standard library's HMAC) is what verify uses, and the tests hold the two equal.
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))
        self._heads: dict[uuid.UUID, bytes] = {}
        self._middles: dict[MiddleParts, bytes] = {}

    def _head(self, user_id: uuid.UUID) -> bytes:
        head = self._heads.get(user_id)
        if head is None:
            if len(self._heads) >= _MAX_CACHED_PARTS:
                self._heads.clear()
            # '["<version>","<user id>",' : the list opened, its first items, the separator after them.
            head = self._heads[user_id] = (
                _CANONICAL_JSON.encode([CHAIN_VERSION, str(user_id)])[:-1].encode() + b","
            )
        return head

    def _middle(self, parts: MiddleParts, details: Mapping[str, Any]) -> bytes:
        if details:  # varies from event to event: encoded every time
            return self._encode_middle(parts, details)
        middle = self._middles.get(parts)
        if middle is None:
            if len(self._middles) >= _MAX_CACHED_PARTS:
                self._middles.clear()
            middle = self._middles[parts] = self._encode_middle(parts, details)
        return middle

    @staticmethod
    def _encode_middle(parts: MiddleParts, details: Mapping[str, Any]) -> bytes:
        actor, action, credential_id, credential_name, tool, kid = parts
        credential = None if credential_id is None else str(credential_id)
        items = [actor, action, credential, credential_name, tool, dict(details), kid]
        # ',"<actor>",...,"<kid>",' : the separators on both sides included.
        return b"," + _CANONICAL_JSON.encode(items)[1:-1].encode("utf-8") + b","

    def sign(
        self,
        user_id: uuid.UUID,
        seq: int,
        at_text: str,
        parts: MiddleParts,
        details: Mapping[str, Any],
        prev_hash: str,
    ) -> str:
        """The event's hash, as ``event_mac`` gives it; ``at_text`` is ``canonical_time(at)`` (the caller
        has it already), ``parts`` the fields from actor to kid but the details (``MiddleParts``).

        ``at_text`` is ISO time, a JSON string as it is; ``prev_hash`` is read back from the database, so it
        is encoded like any other value (a hash edited into something that is not hex stays that hash)."""
        # A hash as stored is 64 hex digits, which JSON writes as they are; anything else (an edited row) goes
        # through the encoder like any other value.
        if prev_hash.isascii() and prev_hash.isalnum():
            encoded_prev = b'"' + prev_hash.encode() + b'"'
        else:
            encoded_prev = _CANONICAL_JSON.encode(prev_hash).encode("utf-8")
        inner = self._inner.copy()
        inner.update(
            b"".join(
                (
                    self._head(user_id),
                    str(seq).encode(),
                    b',"',
                    at_text.encode(),
                    b'"',
                    self._middle(parts, details),
                    encoded_prev,
                    b"]",
                )
            )
        )
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()
