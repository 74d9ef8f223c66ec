"""Alembic, configured in code (no alembic.ini): ``upgrade(url)`` and ``ensure_schema(db)``.

To write a new migration after changing models.py::

    python -m alpaca_vault.db.migrate revision "add audit_events" [--url URL]

which autogenerates a revision against a scratch SQLite file migrated to head.
"""

from __future__ import annotations

import functools
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from alpaca_vault.db.engine import Database, DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config


MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Arbitrary constant: serializes concurrent `db upgrade` runs on one PostgreSQL database.
_PG_MIGRATION_LOCK = 0x616C7061


def make_config(url: str | None = None, connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.attributes["url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


_REVISION_LINE = re.compile(r"^revision(?::[^=]*)?=\s*[\"']([\w-]+)[\"']", re.MULTILINE)
_DOWN_REVISION_LINE = re.compile(r"^down_revision(?::[^=]*)?=\s*(?:[\"']([\w-]+)[\"']|None)", re.MULTILINE)


@functools.cache
def head_revision() -> str:
    """The newest revision in migrations/versions (read once per process).

    Read from the scripts' ``revision``/``down_revision`` lines so start-up needs no
    Alembic import; anything unusual (branches, odd formatting) defers to Alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revision, down = _REVISION_LINE.search(source), _DOWN_REVISION_LINE.search(source)
        if revision is None:
            continue
        if down is None:
            return alembic_head_revision()
        revisions.add(revision.group(1))
        if down.group(1):
            parents.add(down.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else alembic_head_revision()


def alembic_head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(make_config()).get_current_head()
    assert head is not None
    return head


def _current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade_on(connection: Connection) -> None:
    from alembic import command

    command.upgrade(make_config(connection=connection), "head")


async def upgrade_database(db: Database) -> None:
    """Apply every migration up to head, in one transaction."""
    async with db.engine.begin() as conn:
        if db.is_postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        await conn.run_sync(_upgrade_on)
    db.schema_checked = True


async def upgrade(url: str) -> None:
    """``alembic upgrade head`` on the database at ``url`` (what ``alpaca-vault db upgrade`` runs)."""
    db = Database.create(url)
    try:
        await upgrade_database(db)
    finally:
        await db.dispose()


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current_revision)


async def ensure_schema(db: Database) -> None:
    """Make sure the schema is at head before first use.

    An embedded SQLite file is upgraded automatically; a PostgreSQL database
    that is behind gets a clear error (its operator runs ``db upgrade``).
    """
    if db.schema_checked:
        return
    if await current_revision(db) != head_revision():
        if not db.is_sqlite:
            raise DatabaseError(
                "The database schema is not up to date. Run `alpaca-vault db upgrade` "
                "(with the same ALPACA_VAULT_DATABASE_URL) first."
            )
        await upgrade_database(db)
    db.schema_checked = True


def _revision_cli(argv: list[str]) -> int:
    import argparse
    import asyncio

    from alembic import command

    parser = argparse.ArgumentParser(prog="python -m alpaca_vault.db.migrate")
    sub = parser.add_subparsers(dest="cmd", required=True)
    rev = sub.add_parser("revision", help="autogenerate a migration from models.py")
    rev.add_argument("message")
    rev.add_argument("--url", help="database at head to diff against (default: a scratch SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        url = args.url or f"sqlite+aiosqlite:///{scratch}/scratch.db"
        asyncio.run(upgrade(url))
        command.revision(make_config(url), message=args.message, autogenerate=True)
    return 0


if __name__ == "__main__":
    sys.exit(_revision_cli(sys.argv[1:]))
