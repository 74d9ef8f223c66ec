"""The reachability check of tests/vault/test_envelope.py, run in a process of its own.

    python -m tests.vault.data_key_probe DATABASE_URL   (a migrated database; prints a summary)
    python -m tests.vault.data_key_probe                (one URL a line on stdin, one JSON answer a line)

The second form is the test's: one process probes each backend in turn (a process costs a second of
imports). Each probe makes its own key ring, database and data key, and counts what predates it.

It walks the whole heap several times looking for copies of an unwrapped data key. In a
pytest-xdist worker that has run half the suite the heap holds every module and fixture the worker
has seen, and the walks took ~30 s a backend; in a process that holds only the vault they take a
fraction of that and look at the same objects the vault makes. Exits non-zero with the failed
assertion's traceback.
"""

from __future__ import annotations

import asyncio
import gc
import json
import secrets
import sys
import traceback
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr
from sqlalchemy import select, text

from alpaca_vault.db import Database, DataKey
from alpaca_vault.vault import CredentialService, KeyRing, UnsealError, generate_key
from alpaca_vault.vault.aead import AssociatedData
from alpaca_vault.vault.datakeys import OpenDataKey


def key_pair() -> tuple[SecretStr, SecretStr]:
    """A unique paper key pair, as tests/vault/conftest.py makes them; not imported from there, which
    would bring pytest (~0.3 s, ~10,000 more objects for every walk) into a process that needs none of it."""
    return SecretStr(f"PK{secrets.token_hex(8).upper()}"), SecretStr(f"SK{secrets.token_urlsafe(30)}")


def _reachable(kinds: tuple[type, ...], predicate: Any) -> list[Any]:
    """Everything reachable from what the garbage collector tracks that is one of ``kinds`` and
    matches the predicate.

    A full walk: untracked containers (a dict holding only atomic values) and untracked leaves
    (bytes, the Rust AESGCM objects) are found through whatever holds them. Every tracked object is
    a root already, and what is untracked refers to nothing tracked (an untracked tuple or dict holds
    only untracked values; a type outside the collector reports no referents), so below the roots
    the walk follows untracked objects only: the same objects as a walk through everything, for half
    the time. It goes level by level, one ``gc.get_referents`` call and two comprehensions a level
    instead of a few Python calls per object (~270,000 objects a walk, five walks a probe), and tests
    the predicate only on objects of the given kinds.
    """
    gc.collect()
    roots: list[Any] = gc.get_objects()
    found = [obj for obj in roots if isinstance(obj, kinds) and predicate(obj)]
    tracked = gc.is_tracked
    seen: set[int] = set()  # made after the roots were listed: the walk does not wander into it
    level = [obj for obj in gc.get_referents(*roots) if not tracked(obj)]
    del roots
    while level:
        fresh = [obj for obj in level if id(obj) not in seen and not seen.add(id(obj))]  # type: ignore[func-returns-value]
        found.extend([obj for obj in fresh if isinstance(obj, kinds) and predicate(obj)])
        level = [obj for obj in gc.get_referents(*fresh) if not tracked(obj)]
    return found


async def probe(url: str) -> str:
    database = Database.create(url)
    database.schema_checked = True
    keyring = KeyRing.from_string(generate_key())
    service = CredentialService(database, keyring)
    try:
        alice = await service.ensure_user("alice")
        await service.store(alice.id, "gc", "paper", *key_pair())
        async with database.session(readonly=True) as session:
            (row,) = (await session.execute(select(DataKey.__table__))).all()
        raw = keyring.unwrap(row.sealed_key, AssociatedData.for_data_key(row.id, alice.id))
        ring_ciphers = {id(key.cipher) for key in keyring._keys.values()}

        def is_data_key(obj: Any) -> bool:
            return (type(obj) is bytes and obj == raw and obj is not raw) or isinstance(obj, OpenDataKey)

        def is_foreign_cipher(obj: Any) -> bool:
            return isinstance(obj, AESGCM) and id(obj) not in ring_ciphers

        def leftovers() -> list[Any]:
            """Copies of the data key, open data keys, and ciphers that were not there before."""
            found = _reachable(
                (bytes, OpenDataKey, AESGCM), lambda obj: is_data_key(obj) or is_foreign_cipher(obj)
            )
            return [obj for obj in found if id(obj) not in before]

        # The probe works: a copy of the key held in a list, or a cipher in a dict, is found.
        before: set[int] = set()
        held = [bytes(bytearray(raw))]
        cipher_probe = {"cipher": AESGCM(raw)}
        assert {type(obj) for obj in leftovers()} >= {bytes, AESGCM}
        del held, cipher_probe
        before = {id(obj) for obj in leftovers()}  # objects of the set-up that linger until collected

        async with service.unsealed(alice.id, "gc") as opened:
            assert opened.secret_key.get_secret_value()
            assert leftovers() == []  # not even during the block: the key lives only inside the unwrap
        assert leftovers() == []
        # After an error inside the block, and after a failed open (a traceback keeps frames alive), too.
        try:
            async with service.unsealed(alice.id, "gc"):
                raise RuntimeError("the Alpaca call failed")
        except RuntimeError:
            pass
        else:
            raise AssertionError("the error inside the block did not propagate")
        await service.store(alice.id, "other", "paper", *key_pair())
        async with database.session() as session:
            await session.execute(text("UPDATE credentials SET secret_key = api_key WHERE name = 'other'"))
        failed_open = False
        try:
            async with service.unsealed(alice.id, "other"):
                pass
        except UnsealError:
            failed_open = True
        assert failed_open, "a credential with a swapped secret opened"
        assert leftovers() == []
        return (
            f"no copy of the data key, open data key or cipher left: {len(before)} objects predated the probe"
        )
    finally:
        await database.dispose()


def serve_probes() -> None:
    """Probe each URL read from stdin; answer each with a JSON line: {"ok": summary} or {"failed": traceback}."""
    for line in sys.stdin:
        try:
            answer = {"ok": asyncio.run(probe(line.strip()))}
        except Exception:
            answer = {"failed": traceback.format_exc()}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(asyncio.run(probe(sys.argv[1])))
    else:
        serve_probes()
