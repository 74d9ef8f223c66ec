"""The append path's shortcuts write exactly what the slow, obvious code would.

The per-call append signs with ``EventSigner`` (cached message parts) and binds its SQLite row by hand
(``_PendingEvent.sqlite_params``). A signer that drifted from ``event_mac`` would make ``audit verify``
call an honest chain forged; a row bound in another form than SQLAlchemy's would read back as other
values (and so fail verification, or list a wrong time). These hold both to the reference code.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects import sqlite

from alpaca_vault.audit import AuditLog
from alpaca_vault.audit.chain import DETAIL_KEYS, STDIO, Actor, EventSigner, canonical_time, event_mac
from alpaca_vault.audit.log import _SQLITE_COLUMNS, _PendingEvent
from alpaca_vault.db import Database
from alpaca_vault.db.models import AuditEvent
from tests.audit.conftest import Tenant

KEY = b"an audit key for these tests...."
texts = st.text(max_size=40)  # any unicode: quotes, escapes, U+2028, astral planes
details = st.dictionaries(
    st.sampled_from(sorted(DETAIL_KEYS)),
    st.one_of(st.none(), st.booleans(), st.integers(), texts, st.lists(texts, max_size=3)),
    max_size=4,
)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
events = st.fixed_dictionaries(
    {
        "user_id": st.uuids(),
        "seq": st.integers(min_value=1, max_value=2**53),
        "at": times,
        "actor": st.one_of(st.sampled_from(["stdio", "cli", "console", "server"]), texts),
        "action": st.sampled_from(["credential.unseal", "order.intent", "token.create"]),
        "credential_id": st.one_of(st.none(), st.uuids()),
        "credential_name": st.one_of(st.none(), texts),
        "tool": st.one_of(st.none(), texts),
        "details": st.one_of(st.just({}), details),
        "kid": st.text(alphabet="0123456789abcdef", min_size=8, max_size=8),
        # A hash as written, or edited in the database into anything at all (read back, then chained on).
        "prev_hash": st.one_of(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64), texts),
    }
)
# One signer for every example: its caches fill up across them, as in a long-running server. The
# encodings are plain string building: a few dozen examples of arbitrary unicode find a difference.
SIGNER = EventSigner(KEY)


def _parts(event: dict) -> tuple:
    return tuple(event[k] for k in ("actor", "action", "credential_id", "credential_name", "tool", "kid"))


def _sign(signer: EventSigner, event: dict) -> str:
    at_text = canonical_time(event["at"])
    return signer.sign(
        event["user_id"], event["seq"], at_text, _parts(event), event["details"], event["prev_hash"]
    )


@settings(max_examples=60, deadline=None)
@given(event=events, repeats=st.integers(min_value=1, max_value=3))
def test_the_signer_signs_what_event_mac_signs_cached_or_not(event: dict, repeats: int) -> None:
    expected = event_mac(KEY, **event)
    for _ in range(repeats):  # the second time from the signer's cached parts
        assert _sign(SIGNER, event) == expected


def _plain_event(**changes: object) -> dict:
    """One event without details, as the hot path signs them, with ``changes`` applied."""
    event = {
        "user_id": uuid.uuid4(),
        "seq": 7,
        "at": datetime(2026, 12, 2, 1, 2, 3, 456789, tzinfo=UTC),
        "actor": "stdio",
        "action": "credential.unseal",
        "credential_id": None,
        "credential_name": None,
        "tool": "alpaca_get_account",
        "details": {},
        "kid": "k1",
        "prev_hash": "ab" * 32,
    }
    return {**event, **changes}


@pytest.mark.parametrize("key", [b"", b"k", KEY, b"x" * 64, b"y" * 65, bytes(range(256)) * 2])
def test_the_signers_hmac_is_the_standard_librarys_for_any_key_length(key: bytes) -> None:
    """EventSigner builds HMAC-SHA256 from two keyed SHA-256 states (RFC 2104); keys longer than the
    64-byte block are hashed first. The chain's keys are 32 bytes; every length must agree all the same."""
    event = _plain_event()
    assert _sign(EventSigner(key), event) == event_mac(key, **event)


@pytest.mark.parametrize("prev_hash", ["0" * 64, "AB" * 32, 'a"b', "a\\b", "a\x01b", "a/b", "é", "a b", ""])
def test_an_edited_prev_hash_is_signed_as_json_writes_it(prev_hash: str) -> None:
    """A stored hash is 64 hex digits and is written as it is; anything else, an edited row's text
    included, must be encoded as the canonical JSON encodes it (quotes, backslashes, control characters)."""
    event = _plain_event(prev_hash=prev_hash)
    assert _sign(SIGNER, event) == event_mac(KEY, **event)


def test_a_cached_middle_is_never_used_for_another_event() -> None:
    user, credential = uuid.uuid4(), uuid.uuid4()
    base = {
        "user_id": user,
        "seq": 7,
        "at": datetime.now(UTC),
        "actor": "stdio",
        "action": "credential.unseal",
        "credential_id": credential,
        "credential_name": "paper-1",
        "tool": "alpaca_get_account",
        "details": {},
        "kid": "0123abcd",
        "prev_hash": "0" * 64,
    }
    signer = EventSigner(KEY)
    changes = [
        {},
        {"tool": "alpaca_get_positions"},
        {"credential_name": "paper-2"},
        {"credential_id": uuid.uuid4()},
        {"actor": "cli"},
        {"kid": "4567cdef"},
        {"action": "order.cancel"},
        {"details": {"symbol": "AAPL"}},
        {"user_id": uuid.uuid4()},
        {},
    ]
    for change in changes:
        event = {**base, **change}
        assert _sign(signer, event) == event_mac(KEY, **event), change


def _sqlalchemy_params(row: dict) -> tuple:
    """The INSERT's parameters as SQLAlchemy's own bind processors make them on SQLite."""
    dialect = sqlite.dialect()
    compiled = (
        insert(AuditEvent)
        .values({c.key: bindparam(c.key) for c in AuditEvent.__table__.columns})
        .compile(dialect=dialect)
    )
    assert tuple(compiled.positiontup or ()) == _SQLITE_COLUMNS
    out = []
    for name in compiled.positiontup or ():
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        out.append(processor(row[name]) if processor is not None else row[name])
    return tuple(out)


@settings(max_examples=40, deadline=None)
@given(event=events, microsecond=st.sampled_from([0, 1, 999_999, None]))
def test_the_hand_bound_sqlite_row_is_sqlalchemys(event: dict, microsecond: int | None) -> None:
    pending = _PendingEvent(SIGNER, event["user_id"], _parts(event), event["details"])
    row = pending.row((event["seq"], event["prev_hash"]))
    if microsecond is not None:  # a whole second: SQLAlchemy still writes .000000
        row["at"] = row["at"].replace(microsecond=microsecond)
        pending.at_text = canonical_time(row["at"])
    assert pending.sqlite_params(row) == _sqlalchemy_params(row)


async def test_inline_appends_read_back_as_written_and_verify(
    database: Database, audit_log: AuditLog, alice: Tenant
) -> None:
    uid = alice.user.id
    written = [
        await audit_log.append(
            uid, "credential.unseal", STDIO, credential_id=uuid.uuid4(), credential_name="é"
        ),
        await audit_log.append(
            uid,
            "order.intent",
            Actor("token", uuid.uuid4(), 'a "quoted"\u2028name'),
            tool="alpaca_place_order",
            details={"symbol": "AAPL", "qty": "1.5", "legs": ["buy 1 AAPL"]},
        ),
        await audit_log.append(uid, "credential.unseal", STDIO),
    ]
    async with database.session(uid, readonly=True) as session:
        stored = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.user_id == uid).order_by(AuditEvent.seq)
            )
        )
    assert [
        (e.user_id, e.seq, e.at, e.actor, e.credential_id, e.credential_name, e.details, e.hash)
        for e in stored
    ] == [
        (
            w["user_id"],
            w["seq"],
            w["at"],
            w["actor"],
            w["credential_id"],
            w["credential_name"],
            w["details"],
            w["hash"],
        )
        for w in written
    ]
    assert all(abs(e.at - datetime.now(UTC)) < timedelta(minutes=1) for e in stored)
    report = await audit_log.as_owner().verify(uid)
    assert report.ok and report.events == 3, [str(p) for p in report.problems]
