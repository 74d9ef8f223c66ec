"""`alpaca-vault audit list|verify|export` through the console script, on SQLite and PostgreSQL.

The tamper tests change the database the way someone with write access but no
master key could, and check that `audit verify` names the user and the first bad seq.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import delete, select, update

from alpaca_vault.audit import AuditLog, ChainKeys
from alpaca_vault.audit.chain import CLI, GENESIS_HASH, STDIO, Actor, canonical_message
from alpaca_vault.db import Database
from alpaca_vault.db.models import AuditEvent
from alpaca_vault.vault import CredentialService, KeyRing
from tests.cli.conftest import Cli


@dataclass
class Trail:
    db: Database
    alice: uuid.UUID
    bob: uuid.UUID


def _keyring(cli: Cli) -> KeyRing:
    return KeyRing.load(cli.env.get("ALPACA_VAULT_ENCRYPTION_KEYS"), cli.data_dir)


@pytest.fixture
async def trail(cli: Cli) -> AsyncIterator[Trail]:
    """Alice with 4 events, bob with 2, written with the key ring the CLI will use."""
    assert cli("credentials", "list").returncode == 0  # makes the key file on first use (SQLite)
    db = Database.create(cli.effective_url)
    keyring = _keyring(cli)
    vault = CredentialService(db, keyring)
    log = AuditLog(db, ChainKeys.from_keyring(keyring))
    alice, bob = (await vault.ensure_user("alice")).id, (await vault.ensure_user("bob")).id
    token = Actor.token(uuid.uuid4(), "laptop")
    await log.append(alice, "credential.store", CLI, credential_name="paper-1")
    await log.append(alice, "credential.unseal", token, credential_name="paper-1", tool="alpaca_get_account")
    await log.append(
        alice,
        "order.intent",
        token,
        credential_name="paper-1",
        tool="alpaca_place_order",
        details={"symbol": "AAPL", "side": "buy", "qty": "1", "client_order_id": "c-1"},
    )
    await log.append(
        alice, "order.accepted", token, credential_name="paper-1", details={"client_order_id": "c-1"}
    )
    await log.append(bob, "credential.unseal", STDIO, credential_name="bobs", tool="alpaca_get_positions")
    await log.append(bob, "credential.unseal", STDIO, credential_name="bobs", tool="alpaca_get_account")
    log.close()
    try:
        yield Trail(db, alice, bob)
    finally:
        await db.dispose()


async def _alice_row(trail: Trail, seq: int) -> AuditEvent:
    async with trail.db.session(trail.alice) as session:
        return (
            await session.execute(
                select(AuditEvent).where(AuditEvent.user_id == trail.alice, AuditEvent.seq == seq)
            )
        ).scalar_one()


def _verify_fails_at(cli: Cli, seq: int, what: str, label: str = "TAMPERED") -> None:
    result = cli("audit", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{label}: user alice: seq {seq}: {what}" in result.stdout
    assert "bob" not in result.stdout  # bob's chain is intact and not named
    assert "Traceback" not in result.stderr


async def test_verify_passes_on_a_clean_trail(cli: Cli, trail: Trail) -> None:
    result = cli("audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 6 event(s) of 2 user(s) verified" in result.stdout
    assert cli("audit", "verify", "--user", "bob").stdout.startswith("OK: 2 event(s) of 1 user(s)")


async def test_verify_detects_an_edited_detail(cli: Cli, trail: Trail) -> None:
    async with trail.db.session(trail.alice) as session:
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.user_id == trail.alice, AuditEvent.seq == 3)
            .values(details={"symbol": "TSLA", "side": "buy", "qty": "1", "client_order_id": "c-1"})
        )
    _verify_fails_at(cli, 3, "hash does not match the event's contents")


async def test_verify_detects_a_deleted_event(cli: Cli, trail: Trail) -> None:
    async with trail.db.session(trail.alice) as session:
        await session.execute(
            delete(AuditEvent).where(AuditEvent.user_id == trail.alice, AuditEvent.seq == 2)
        )
    _verify_fails_at(cli, 2, "seq 2 missing")


async def test_verify_detects_two_swapped_events(cli: Cli, trail: Trail) -> None:
    async with trail.db.session(trail.alice) as session:
        for old, new in ((2, -2), (3, 2), (-2, 3)):
            await session.execute(
                update(AuditEvent)
                .where(AuditEvent.user_id == trail.alice, AuditEvent.seq == old)
                .values(seq=new)
            )
    _verify_fails_at(cli, 2, "prev_hash does not match")


async def test_verify_detects_a_chain_recomputed_with_sha256_without_the_master_key(
    cli: Cli, trail: Trail
) -> None:
    # Attack: rewrite an event, then re-chain every hash with plain SHA-256 of the same canonical form.
    prev = GENESIS_HASH
    async with trail.db.session(trail.alice) as session:
        rows = (
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.user_id == trail.alice).order_by(AuditEvent.seq)
                )
            )
            .scalars()
            .all()
        )
        for row in rows:
            details = {**row.details, "qty": "1000"} if row.seq == 3 else row.details
            message = canonical_message(
                user_id=row.user_id,
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                credential_id=row.credential_id,
                credential_name=row.credential_name,
                tool=row.tool,
                details=details,
                kid=row.kid,
                prev_hash=prev,
            )
            digest = hashlib.sha256(message).hexdigest()
            await session.execute(
                update(AuditEvent)
                .where(AuditEvent.user_id == row.user_id, AuditEvent.seq == row.seq)
                .values(details=details, prev_hash=prev, hash=digest)
            )
            prev = digest
    _verify_fails_at(cli, 1, "hash does not match the event's contents")


async def test_verify_names_a_key_missing_from_the_ring(cli: Cli, trail: Trail) -> None:
    async with trail.db.session(trail.alice) as session:
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.user_id == trail.alice, AuditEvent.seq == 4)
            .values(kid="gone")
        )
    # Not proof of tampering (a retired key dropped from the ring), so not called that; still exit 1.
    _verify_fails_at(
        cli,
        4,
        "signed under key 'gone', which is not in the key ring: add that key back (after the primary) to "
        "verify it; if no key of this vault ever had that id, the event was tampered with",
        "UNVERIFIABLE",
    )


async def test_a_made_up_key_id_does_not_hide_a_broken_chain_or_what_follows(cli: Cli, trail: Trail) -> None:
    """Attack stopped: with write access to the database, replace an event's link and give it a key id
    no ring holds, so that verify calls it "unverifiable" (a harmless retired key) instead of tampered,
    and stops walking there. The links are checked first (they need no key), and the walk goes on past
    an event it cannot check, so a later edit is still named."""
    async with trail.db.session(trail.alice) as session:
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.user_id == trail.alice, AuditEvent.seq == 4)
            .values(kid="gone", prev_hash="0" * 64)
        )
    _verify_fails_at(cli, 4, "prev_hash does not match the previous event's hash")
    async with trail.db.session(trail.alice) as session:
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.user_id == trail.alice, AuditEvent.seq == 4)
            .values(kid=(await _alice_row(trail, 3)).kid, prev_hash=(await _alice_row(trail, 3)).hash)
        )
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.user_id == trail.alice, AuditEvent.seq == 2)
            .values(kid="gone")
        )
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.user_id == trail.alice, AuditEvent.seq == 3)
            .values(details={"symbol": "TSLA", "side": "buy", "qty": "1", "client_order_id": "c-1"})
        )
    result = cli("audit", "verify")
    assert result.returncode == 1
    assert "UNVERIFIABLE: user alice: seq 2: signed under key 'gone'" in result.stdout
    assert "TAMPERED: user alice: seq 3: hash does not match the event's contents" in result.stdout


async def test_list_filters_and_shows_only_the_named_user(cli: Cli, trail: Trail) -> None:
    table = cli("audit", "list", "--user", "alice")
    assert table.returncode == 0, table.stderr
    assert "order.intent" in table.stdout and "symbol=AAPL" in table.stdout and "bobs" not in table.stdout
    as_json = json.loads(cli("audit", "list", "--user", "alice", "--action", "order.intent", "--json").stdout)
    assert [(e["user"], e["seq"], e["details"]["client_order_id"]) for e in as_json] == [("alice", 3, "c-1")]
    both = json.loads(cli("audit", "list", "--json", "--limit", "3").stdout)
    assert len(both) == 3
    by_credential = json.loads(cli("audit", "list", "--credential", "bobs", "--json").stdout)
    assert {e["user"] for e in by_credential} == {"bob"} and len(by_credential) == 2
    bad = cli("audit", "list", "--action", "credential.peek")
    assert bad.returncode == 1 and "Unknown action 'credential.peek'" in bad.stderr
    assert "is not an ISO date" in cli("audit", "list", "--since", "yesterday").stderr
    assert "No user named 'mallory'" in cli("audit", "list", "--user", "mallory").stderr


async def test_export_jsonl_and_csv_carry_every_field_of_one_user(cli: Cli, trail: Trail) -> None:
    jsonl = cli("audit", "export", "--user", "alice")
    assert jsonl.returncode == 0, jsonl.stderr
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3, 4] and {e["user"] for e in lines} == {"alice"}
    assert lines[1]["prev_hash"] == lines[0]["hash"] and lines[0]["prev_hash"] == GENESIS_HASH
    assert "Exported 4 event(s)." in jsonl.stderr
    rows = list(csv.DictReader(io.StringIO(cli("audit", "export", "--format", "csv").stdout)))
    assert len(rows) == 6 and {r["user"] for r in rows} == {"alice", "bob"}
    assert json.loads(rows[2]["details"])["symbol"] == "AAPL"


async def test_export_into_a_reader_that_stops_early_ends_quietly(cli: Cli, trail: Trail) -> None:
    """`audit export | head -1`: the reader goes away mid-export. The export stops without a word (it used
    to say "cannot reach the database: Broken pipe", a database problem that was not there)."""
    log = AuditLog(trail.db, ChainKeys.from_keyring(_keyring(cli)))
    for n in range(1500):  # about 600 KB of JSON lines: far more than a pipe holds, so the export blocks
        await log.append(trail.alice, "credential.unseal", CLI, credential_name=f"paper-{n}")
    log.close()
    process = cli.popen("audit", "export")
    assert process.stdout is not None and process.stderr is not None
    first = json.loads(process.stdout.readline())
    assert first["seq"] == 1
    process.stdout.close()  # as `head -1` does
    process.wait(timeout=60)
    stderr = process.stderr.read()
    assert process.returncode == 1
    assert stderr == "", stderr
