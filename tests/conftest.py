"""Shared test configuration.

Fixtures live in ``tests/fixtures/`` (one module per real part: the
PostgreSQL cluster, the simulator on a loopback port, ...) and are loaded
here as plugins so every test directory can use them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import jsonschema.validators
import pytest
import stamina

# Tests must never read a developer's real vault or talk to real Alpaca.
for _name in list(os.environ):
    if _name.startswith("ALPACA_VAULT_") and _name != "ALPACA_VAULT_TEST_POSTGRES_URL":
        del os.environ[_name]

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.postgres_tls",
    "tests.fixtures.databases",
    "tests.fixtures.simulator",
    "tests.fixtures.mcp_server",
]


@pytest.fixture(autouse=True, scope="session")
def _retries_without_waiting() -> Iterator[None]:
    """stamina's test mode: every retry loop keeps its attempts (capped at 10) but never sleeps.

    A test that needs real backoff waits turns test mode off itself (``stamina.set_testing(False)``).
    """
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.fixture(autouse=True)
def _logs_at_warning() -> Iterator[None]:
    """Log at WARNING unless a test asks for more (``caplog.set_level``, ``configure_logging``).

    DEBUG records cost a scrub each; a test that raised the level must not leave it raised, nor
    leave its stderr handler behind, for the tests after it.
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.setLevel(logging.WARNING)
    yield
    for handler in root.handlers[:]:
        if handler not in handlers and getattr(handler, "_alpaca_vault_handler", False):
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(autouse=True, scope="session")
def _each_output_schema_checked_once() -> Iterator[None]:
    """The SDK Client checks a tool's output schema against the JSON Schema metaschema once per
    session and tool: ~50 ms of CPU each, paid again by every test's fresh Client for the same
    schemas (a quarter of tests/tools' CPU). The check is a pure function of the schema's text, so
    a schema that passed once in this worker passes again without a second walk; a schema that
    fails is checked (and fails) every time. The result's validation against the schema still
    runs on every call.
    """
    passed: set[tuple[type, str]] = set()
    originals = {cls: cls.__dict__["check_schema"] for cls in jsonschema.validators._VALIDATORS.values()}

    def memoized(original: Any) -> Any:
        def check_schema(cls: type, schema: Any, *args: Any, **kwargs: Any) -> None:
            if args or kwargs:  # a caller's own format checker: not the SDK's check, not memoized
                original.__func__(cls, schema, *args, **kwargs)
                return
            key = (cls, json.dumps(schema, sort_keys=True))
            if key not in passed:
                original.__func__(cls, schema)
                passed.add(key)

        return classmethod(check_schema)

    for cls, original in originals.items():
        cls.check_schema = memoized(original)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for cls, original in originals.items():
            cls.check_schema = original  # type: ignore[method-assign]
