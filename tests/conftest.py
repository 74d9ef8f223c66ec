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

import httpx2._transports.default
import jsonschema.validators
import mcp_types.methods
import pytest
import stamina
import typer.testing

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

# The suite's longest files, longest first, run before all others (#9). `make test` hands whole files
# to its workers (pytest-xdist --dist loadfile) in collection order, so a long file that came last
# (tests/vault's, alphabetically) kept one worker busy while the other had nothing left: longest
# first, the last files handed out are short ones. From a full run's per-file times (PYTEST_ARGS=
# --durations=0, summed per file); a file missing here only runs in its usual place.
RUN_FIRST = (
    "tests/server/test_serve_hints.py",
    "tests/vault/test_envelope.py",
    "tests/console/test_key_entry_e2e.py",
    "tests/audit/test_soak.py",
    "tests/multiuser/test_load.py",
    "tests/multiuser/test_replica_budget.py",
    "tests/console/test_approval_e2e.py",
    "tests/guard/test_replicas.py",
    "tests/simulator/test_fuzz.py",
    "tests/vault/test_credentials.py",
    "tests/tools/test_schemas.py",
    "tests/audit/test_crash.py",
    "tests/server/test_fuzz_arguments.py",
    "tests/console/test_console_pages.py",
    "tests/server/test_cold_start.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: place for place, path in enumerate(RUN_FIRST)}
    # A stable sort: the files not listed, and the tests within every file, keep their order.
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


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


@pytest.fixture(autouse=True, scope="session")
def _one_default_tls_context() -> Iterator[None]:
    """Every httpx client the tests make (``httpx2.post``, the simulator's admin client, the SDK's
    HTTP client) loads the system CA bundle for its default TLS context: ~50 ms of CPU per client,
    even for the plain-http loopback URLs used here. The default context is built once per
    environment (SSL_CERT_FILE/SSL_CERT_DIR) and shared, as the server's broker does
    (``verified_tls_context``). A client given its own ``verify`` or ``cert`` gets its own.
    """
    module = httpx2._transports.default
    original = module.create_ssl_context
    built: dict[tuple[bool, str | None, str | None], Any] = {}

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is not True or cert is not None:
            return original(verify=verify, cert=cert, trust_env=trust_env)
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in built:
            built[key] = original(verify=verify, cert=cert, trust_env=trust_env)
        return built[key]

    module.create_ssl_context = create_ssl_context  # type: ignore[assignment]
    try:
        yield
    finally:
        module.create_ssl_context = original


@pytest.fixture(autouse=True, scope="session")
def _each_cli_built_once() -> Iterator[None]:
    """Typer's test runner turns the Typer app into its click command on every ``invoke``: ~45 ms
    of CPU evaluating every command's type hints, paid again by each of the suite's hundreds of
    in-process CLI calls. A process builds it once (``app()``); so does each app here. The command
    built is the one the console script runs: parsing, prompts and output are unchanged.
    """
    module = typer.testing
    original = module._get_command
    built: dict[int, tuple[Any, Any]] = {}

    def get_command(app: Any) -> Any:
        key = id(app)
        if key not in built or built[key][0] is not app:
            built[key] = (app, original(app))
        return built[key][1]

    module._get_command = get_command  # type: ignore[attr-defined]
    try:
        yield
    finally:
        module._get_command = original  # type: ignore[attr-defined]


@pytest.fixture(autouse=True, scope="session")
def _each_tool_listing_validated_once() -> Iterator[None]:
    """The SDK Client validates every server result against the protocol revision's schema; for a
    tools/list answer (some fifty tools' schemas) that is ~20 ms of CPU, paid again by each test's
    fresh Client for the very same listing. The check is a pure function of (method, revision,
    answer) and returns nothing: an answer whose exact text passed once in this worker passes again
    without a second walk; any other answer, and every other method's, is validated as always.
    """
    module = mcp_types.methods
    original = module.validate_server_result
    passed: set[tuple[str, str, str]] = set()

    def validate_server_result(method: str, version: str, data: Any, **kwargs: Any) -> None:
        if method != "tools/list" or kwargs:
            return original(method, version, data, **kwargs)
        key = (method, version, json.dumps(data, sort_keys=True))
        if key not in passed:
            original(method, version, data)
            passed.add(key)
        return None

    module.validate_server_result = validate_server_result
    try:
        yield
    finally:
        module.validate_server_result = original
