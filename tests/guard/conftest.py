"""Guard tests reuse the CLI fixture (the console script on SQLite and on PostgreSQL)."""

from __future__ import annotations

from tests.cli.conftest import cli  # noqa: F401 - a fixture, re-exported for tests/guard
