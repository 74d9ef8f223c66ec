"""Which secrets were unsealed during the current request.

The server opens an ``exposure_scope()`` around each tool call; every value
``CredentialService.unsealed`` decrypts is registered here, and the last-line
scrubber redacts any of them it finds in a result or log record. Outside a
scope nothing is recorded (and so nothing is kept alive).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_exposed: ContextVar[set[str] | None] = ContextVar("alpaca_vault_exposed_secrets", default=None)


@contextmanager
def exposure_scope() -> Iterator[None]:
    """Start a fresh set of exposed values for this request; it is emptied on exit."""
    values: set[str] = set()
    token = _exposed.set(values)
    try:
        yield
    finally:
        _exposed.reset(token)
        values.clear()


def register_exposed(value: str) -> None:
    """Record a plaintext secret as exposed in the current scope (no-op outside a scope)."""
    values = _exposed.get()
    if values is not None and value:
        values.add(value)


def exposed_values() -> frozenset[str]:
    """The secrets unsealed so far in the current scope (empty outside a scope)."""
    values = _exposed.get()
    return frozenset(values) if values else frozenset()
