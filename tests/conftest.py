"""Shared test configuration.

Fixtures live in ``tests/fixtures/`` (one module per real part: the
PostgreSQL cluster, the simulator on a loopback port, ...) and are loaded
here as plugins so every test directory can use them.
"""

from __future__ import annotations

import os

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
