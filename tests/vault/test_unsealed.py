"""Decrypt on demand leaves nothing behind: not in the vault, the ORM session, its objects."""

from __future__ import annotations

import gc
import inspect
from typing import Any

import pytest
from sqlalchemy import event

from alpaca_vault.db import Credential, SealedValue
from alpaca_vault.vault import (
    CredentialService,
    UnsealedCredentialClosed,
    UserInfo,
    exposed_values,
    exposure_scope,
)
from tests.vault.conftest import key_pair


def _referrers_besides_this_test(*values: str) -> list[list[Any]]:
    """What still refers to each value (in order), other than this test's own frames and garbage.

    A full collection costs a pass over the whole heap (a few tenths of a second in a worker that has
    run half the suite), the search for referrers a small fraction of that. So the heap is searched
    first after collecting only the young generations: when nothing at all refers to the values, not
    even garbage, a full collection could only have found the same nothing. Otherwise the full
    collection runs and the search is repeated on what survives it, as before.
    """
    gc.collect(1)
    found = _referrers_in_heap(values)
    if any(found):
        del found
        gc.collect()
        found = _referrers_in_heap(values)
    return found


def _referrers_in_heap(values: tuple[str, ...]) -> list[list[Any]]:
    """One pass over the heap for all the values, leaving out the calling frames."""
    here = inspect.currentframe()
    callers = set()
    frame = here
    while frame is not None:
        callers.add(id(frame))
        frame = frame.f_back
    # In 3.11 a coroutine's frame lives inside the coroutine object, so it shows up as the referrer.
    others = [
        r
        for r in gc.get_referrers(*values)
        if id(r) not in callers and id(getattr(r, "cr_frame", None)) not in callers and r is not values
    ]
    # Equal strings may be distinct objects (one secret unsealed twice): matched by identity.
    return [[r for r in others if any(held is value for held in gc.get_referents(r))] for value in values]


async def test_plaintext_is_unreachable_after_the_block(service: CredentialService, alice: UserInfo) -> None:
    await service.store(alice.id, "gc", "paper", *key_pair())
    loaded: list[Credential] = []

    def on_load(target: Credential, _context: object) -> None:
        loaded.append(target)

    event.listen(Credential, "load", on_load)
    try:
        async with service.unsealed(alice.id, "gc") as opened:
            api_plain = opened.api_key.get_secret_value()
            secret_plain = opened.secret_key.get_secret_value()
            # Sanity check of the probe: while open, the yielded object holds the secret.
            assert _referrers_besides_this_test(secret_plain) != [[]]
        # By name, the row is read as a plain row: no ORM object, no identity map entry.
        assert loaded == []
        # With no reference the only active credential is read the same way.
        async with service.unsealed(alice.id, None) as again:
            secret_again = again.secret_key.get_secret_value()
        assert loaded == []
        # Metadata reads go through the ORM: those objects must hold only sealed values.
        await service.get(alice.id, None)
    finally:
        event.remove(Credential, "load", on_load)

    assert _referrers_besides_this_test(api_plain, secret_plain, secret_again) == [[], [], []]
    with pytest.raises(UnsealedCredentialClosed, match="'gc' was used after its unsealed\\(\\) block ended"):
        _ = opened.secret_key
    with pytest.raises(UnsealedCredentialClosed):
        _ = again.api_key
    assert secret_plain not in repr(opened)

    # The ORM objects that were loaded hold only sealed values.
    assert len(loaded) == 1
    for row in loaded:
        assert isinstance(row.api_key, SealedValue) and isinstance(row.secret_key, SealedValue)
        state = repr(vars(row))
        assert api_plain not in state and secret_plain not in state


async def test_plaintext_is_unreachable_even_after_an_error_in_the_block(
    service: CredentialService, alice: UserInfo
) -> None:
    await service.store(alice.id, "boom", "paper", *key_pair())
    with pytest.raises(RuntimeError):
        async with service.unsealed(alice.id, "boom") as opened:
            secret_plain = opened.secret_key.get_secret_value()
            raise RuntimeError("the Alpaca call failed")
    assert _referrers_besides_this_test(secret_plain) == [[]]


async def test_unsealed_values_are_registered_for_the_request_scrubber(
    service: CredentialService, alice: UserInfo
) -> None:
    api, secret = key_pair()
    await service.store(alice.id, "scrub", "paper", api, secret)
    with exposure_scope():
        assert exposed_values() == frozenset()
        async with service.unsealed(alice.id, "scrub") as opened:
            secret_plain = opened.secret_key.get_secret_value()
        # Still known after the block: the scrubber runs on the tool result afterwards.
        assert exposed_values() == {api.get_secret_value(), secret.get_secret_value()}
    assert exposed_values() == frozenset()
    assert _referrers_besides_this_test(secret_plain) == [[]]


async def test_outside_a_scope_nothing_is_recorded(service: CredentialService, alice: UserInfo) -> None:
    await service.store(alice.id, "noscope", "paper", *key_pair())
    async with service.unsealed(alice.id, "noscope"):
        pass
    assert exposed_values() == frozenset()
