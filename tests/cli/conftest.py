"""CLI tests run the installed console script in a subprocess, as a user would."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import insert

from alpaca_vault.db import Credential, Database
from alpaca_vault.db.models import utcnow
from alpaca_vault.vault import AssociatedData, KeyRing, generate_key
from tests.fixtures.postgres import PostgresDatabases

CONSOLE_SCRIPT = Path(sys.executable).parent / "alpaca-vault"


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
    """SQLite: the embedded default (no URL; the file is created and migrated on first use).
    PostgreSQL: a fresh migrated database via ALPACA_VAULT_DATABASE_URL, keys via ENCRYPTION_KEYS."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
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
