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
def _each_tool_listing_shaped_and_validated_once() -> Iterator[None]:
    """Both ends of a tools/list pay for the same fifty tools' schemas, again for each test's fresh
    Client and server: the server's SDK shapes the answer for the client's protocol revision
    (validate, then dump: ~15-40 ms of CPU), and the client validates what it received (~20 ms).
    Both are pure functions of (method, revision, answer) built on ``serialize_server_result``.

    Server side: every server of a worker answers from the one listing its process dumped
    (server/app.py ``_DUMPED_LISTINGS``, never changed once stored), so that listing, recognised by
    identity, is shaped once per revision and each answer is a fresh copy (from JSON) of the shape.
    Client side: an answer whose exact text passed once in this worker passes again without a second
    walk; a copy handed out above is known by identity on the in-memory transport (its tools are that
    text), anything else is keyed by its JSON. Every other answer and method goes through as always.
    """
    from alpaca_vault.server import app as server_app

    module = mcp_types.methods
    original_shape = module.serialize_server_result
    original_validate = module.validate_server_result
    shaped: dict[tuple[str, int, str], tuple[list[Any], str]] = {}
    handed: dict[int, tuple[list[Any], str, str]] = {}  # id(tools) -> (tools, revision, shaped text)
    passed: set[tuple[str, str, str, str]] = set()

    def rest_of(data: Any) -> str:
        return json.dumps({k: v for k, v in data.items() if k != "tools"}, sort_keys=True)

    def serialize_server_result(method: str, version: str, data: Any, **kwargs: Any) -> Any:
        tools = data.get("tools") if method == "tools/list" and not kwargs else None
        stored = any(tools is listing.get("tools") for listing in server_app._DUMPED_LISTINGS.values())
        if tools is None or not stored:
            return original_shape(method, version, data, **kwargs)
        key = (version, id(tools), rest_of(data))
        entry = shaped.get(key)
        if entry is None or entry[0] is not tools:
            entry = shaped[key] = (tools, json.dumps(original_shape(method, version, data)))
        answer = json.loads(entry[1])
        while len(handed) >= 16:  # answers that never reached a validating client (HTTP): forgotten
            del handed[next(iter(handed))]
        handed[id(answer["tools"])] = (answer["tools"], version, entry[1])
        return answer

    def validate_server_result(method: str, version: str, data: Any, **kwargs: Any) -> None:
        if method != "tools/list" or kwargs:
            return original_validate(method, version, data, **kwargs)
        known = handed.pop(id(data.get("tools")), None)
        if known is not None and known[0] is data["tools"] and known[1] == version:
            key = (method, version, known[2], rest_of(data))
        else:
            key = (method, version, json.dumps(data, sort_keys=True), "")
        if key not in passed:
            original_validate(method, version, data)
            passed.add(key)
        return None

    module.serialize_server_result = serialize_server_result
    module.validate_server_result = validate_server_result
    try:
        yield
    finally:
        module.serialize_server_result = original_shape
        module.validate_server_result = original_validate
