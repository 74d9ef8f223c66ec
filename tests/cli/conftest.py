"""CLI tests: the command line as a user types it, against a private data dir.

``cli(...)`` runs the command in this process (Typer's runner, on a thread of its own so the
command's ``asyncio.run`` does not meet the test's event loop) and answers like ``subprocess.run``:
returncode, stdout, stderr, with an unexpected exception's traceback on stderr and exit code 1, as
the console script would print it. A process costs about a second of imports per command, and the
suite makes hundreds of calls; ``cli.script(...)`` and ``cli.popen(...)`` run the installed console
script in a real subprocess, for what needs one (the entry point, a terminal, signals, servers;
PATH-aware hints run in-process with the hint's once-a-process cache cleared).
``ALPACA_VAULT_TEST_CLI=subprocess`` runs every call as a subprocess.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import pty
import select
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from alpaca_vault.db import Credential, Database
from alpaca_vault.db.models import utcnow
from alpaca_vault.vault import AssociatedData, KeyRing, generate_key
from tests.fixtures.databases import migrated_sqlite_file
from tests.fixtures.postgres import PostgresDatabases

CONSOLE_SCRIPT = Path(sys.executable).parent / "alpaca-vault"
IN_PROCESS = os.environ.get("ALPACA_VAULT_TEST_CLI", "in-process") != "subprocess"


def _loggers() -> dict[str, logging.Logger]:
    """The root logger and every named one (placeholders aside)."""
    named = logging.Logger.manager.loggerDict.items()
    return {"": logging.getLogger(), **{n: lg for n, lg in named if isinstance(lg, logging.Logger)}}


def _invoke(args: list[str], input: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One command in this process, with exactly ``env`` as its environment."""
    from alpaca_vault.server.cli import app

    overrides: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    overrides.update(env)
    root = logging.getLogger()
    handlers = list(root.handlers)
    # The command configures logging as a process would (its level, quieter HTTP libraries): undo it all.
    levels = {name: logger.level for name, logger in _loggers().items()}
    try:
        result = CliRunner().invoke(app, args, input=input, env=overrides, catch_exceptions=True)
    finally:
        # The command's stderr log handler points at the runner's stream, closed now.
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        for name, logger in _loggers().items():
            logger.setLevel(levels.get(name, logging.NOTSET))
    stderr, code = result.stderr, result.exit_code
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
        code = 1
    return subprocess.CompletedProcess([CONSOLE_SCRIPT.name, *args], code, result.stdout, stderr)


@dataclass
class Cli:
    """The console script with a private data dir (and database URL for PostgreSQL)."""

    data_dir: Path
    database_url: str | None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def effective_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'vault.db'}"

    def environ(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_VAULT_")}
        env["ALPACA_VAULT_DATA_DIR"] = str(self.data_dir)
        if self.database_url:
            env["ALPACA_VAULT_DATABASE_URL"] = self.database_url
        env.update(self.env)
        env.update(extra)
        return env

    def popen(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(CONSOLE_SCRIPT), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environ(**extra),
        )

    def __call__(
        self, *args: str, input: str | None = None, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        if not IN_PROCESS:
            return self.script(*args, input=input, **extra)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            call = pool.submit(_invoke, list(args), input or "", self.environ(**extra))
            return call.result(timeout=60)

    def script(self, *args: str, input: str | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
        """The installed console script in a subprocess, as a user's shell runs it."""
        return subprocess.run(
            [str(CONSOLE_SCRIPT), *args],
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
            env=self.environ(**extra),
        )


def answer_on_a_terminal(
    args: list[str], env: dict[str, str], answers: list[tuple[bytes, str]], done: bytes
) -> str:
    """Run the console script on a pseudo-terminal and type each answer after its prompt, as a person
    would; wait for ``done`` and a clean exit. Returns everything the terminal showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(CONSOLE_SCRIPT), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    seen = b""

    def read_until(marker: bytes, deadline: float) -> None:
        nonlocal seen
        while marker not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    return

    deadline = time.monotonic() + 30
    # Click writes the prompt, then getpass turns echo off and writes the trailing space:
    # typing before that space would be echoed and flushed, so wait for it, as a person would.
    for prompt, answer in answers:
        read_until(prompt, deadline)
        os.write(master, answer.encode() + b"\n")
    read_until(done, deadline)
    assert proc.wait(timeout=30) == 0
    read_until(b"\n\n", time.monotonic() + 0.5)
    os.close(master)
    return seen.decode(errors="replace")


@pytest.fixture(params=["sqlite", "postgres"])
async def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    """SQLite: the embedded default (no URL), its file already migrated (a copy of this worker's
    template: migrating costs ~0.3 s a test; the tests that start from an empty data dir, and
    `db upgrade`, cover the first-use migration). PostgreSQL: a fresh migrated database via
    ALPACA_VAULT_DATABASE_URL, keys via ENCRYPTION_KEYS."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        migrated_sqlite_file(data_dir / "vault.db")
        return Cli(data_dir, None)
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    # A shared database never gets a key file made for it: the key ring comes from the environment.
    keys = {"ALPACA_VAULT_ENCRYPTION_KEYS": generate_key()}
    return Cli(data_dir, await databases.create_migrated(), env=keys)


async def bulk_seal(
    db: Database, keyring: KeyRing, user_id: uuid.UUID, count: int, prefix: str = "bulk"
) -> None:
    """Insert ``count`` credentials sealed under the key ring's primary key, in one statement."""
    now = utcnow()
    rows = []
    for i in range(count):
        row_id = uuid.uuid4()
        api = f"PK{prefix.upper()}{i:08d}"
        rows.append(
            {
                "id": row_id,
                "user_id": user_id,
                "name": f"{prefix}-{i}",
                "provider": "alpaca",
                "environment": "paper",
                "api_key": keyring.seal(api, AssociatedData.for_credential("api_key", row_id, user_id)),
                "secret_key": keyring.seal(
                    f"SK{prefix}{i:08d}", AssociatedData.for_credential("secret_key", row_id, user_id)
                ),
                "key_fingerprint": keyring.fingerprint(api),
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
    async with db.session(user_id) as session:
        await session.execute(insert(Credential), rows)
