"""Process-level hardening at the server's edge (issue #10, point 11).

* ``harden_process``: in server mode, no core dumps and a non-dumpable process, so a crash or a
  same-user debugger cannot lift unsealed keys (or the master key) out of memory; a non-dumpable
  process's ``/proc/PID/environ`` and ``mem`` also stop being readable by the user's other processes.
* ``may_create_key_file``: a missing ``master.key`` next to an embedded vault that already holds
  sealed values means the key was lost or moved; making a new one would silently seal new values
  under a key that cannot open the old ones. Refuse, and say what to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import resource
import sqlite3
import sys
from pathlib import Path

from alpaca_vault.server.settings import Settings
from alpaca_vault.vault.errors import KeyRingError

logger = logging.getLogger("alpaca_vault.server")

_PR_SET_DUMPABLE = 4
# Tables whose rows are sealed under the master key (directly, or through a data key it wraps).
_SEALED_TABLES = ("credentials", "data_keys")


def harden_process() -> None:
    """Core dumps off (soft and hard limit 0) and, on Linux, the process marked non-dumpable."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError) as exc:  # a sandbox may forbid it: say so, keep serving
        logger.warning("Could not turn core dumps off: %s", exc)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            logger.warning("Could not mark the process non-dumpable (errno %d)", ctypes.get_errno())


def _sqlite_path(settings: Settings) -> Path | None:
    url = settings.effective_database_url
    prefix = "sqlite+aiosqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) else None


def holds_sealed_values(database_file: Path) -> bool:
    """Whether an embedded SQLite vault has any row sealed under a master key (read-only look)."""
    if not database_file.exists():
        return False
    connection = sqlite3.connect(f"file:{database_file}?mode=ro", uri=True)
    try:
        present = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return any(
            connection.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None  # noqa: S608 - fixed names
            for table in _SEALED_TABLES
            if table in present
        )
    finally:
        connection.close()


def may_create_key_file(settings: Settings) -> bool:
    """``create_key_file`` for ``KeyRing.load``: True only where making a new master key is safe.

    Raises ``KeyRingError`` when the key file is missing but the embedded vault already holds sealed values.
    """
    if not settings.is_embedded_sqlite:
        return False  # a shared database needs the replicas' keys, never a fresh one
    if settings.encryption_keys is not None and settings.encryption_keys.get_secret_value().strip():
        return True  # the key file is not used at all
    # Here, not at the top: harden_process runs first thing in `serve`, and the key ring loads SQLAlchemy.
    from alpaca_vault.vault.keyring import KEY_FILE_NAME

    key_file = settings.data_dir / KEY_FILE_NAME
    database_file = _sqlite_path(settings)
    if not key_file.exists() and database_file is not None and holds_sealed_values(database_file):
        raise KeyRingError(
            f"The master key file {key_file} is missing, but the vault {database_file} already holds values "
            "sealed under a master key. A new key could not open them, so none is created. Restore "
            "master.key from your backup (mode 0600) or set ALPACA_VAULT_ENCRYPTION_KEYS to the key in use."
        )
    return True
