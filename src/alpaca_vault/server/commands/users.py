"""`alpaca-vault users ...`: Users of a multi-user (HTTP) deployment."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from alpaca_vault.server.hints import program

if TYPE_CHECKING:
    from alpaca_vault.accounts import AccountAdmin, UserRecord
    from alpaca_vault.vault.datakeys import ShredResult

app = typer.Typer(help="Users of a multi-user (HTTP) deployment.", no_args_is_help=True)

T = TypeVar("T")


@asynccontextmanager
async def account_admin(*, audited: bool = False) -> AsyncIterator[AccountAdmin]:
    """The users/tokens admin on the configured database (the embedded SQLite file is created if new).

    ``audited``: every change writes its audit event in its own transaction (fail closed), signed
    with the key ring (``require_audit_keys`` has checked it can be loaded)."""
    from alpaca_vault.accounts import AccountAdmin
    from alpaca_vault.db.migrate import ensure_schema
    from alpaca_vault.server.settings import load_settings

    settings = load_settings()
    db = settings.open_database()
    try:
        await ensure_schema(db)
        audit = None
        if audited:
            from alpaca_vault.audit import AuditLog, ChainKeys
            from alpaca_vault.server.hardening import may_create_key_file
            from alpaca_vault.vault import KeyRing

            keys = settings.encryption_keys.get_secret_value() if settings.encryption_keys else None
            keyring = KeyRing.load(keys, settings.data_dir, create_key_file=may_create_key_file(settings))
            audit = AuditLog(db, ChainKeys.from_keyring(keyring))
        yield AccountAdmin(db, audit)
    finally:
        await db.dispose()


def run_admin(action: Callable[[AccountAdmin], Awaitable[T]], *, audited: bool = False) -> T:
    """Run one admin action; expected failures become one stderr line and exit 1 (2 for bad settings).

    ``audited``: a change and its audit event commit together or not at all."""
    from sqlalchemy.exc import DBAPIError

    from alpaca_vault.accounts import AccountError
    from alpaca_vault.audit import AuditUnavailable
    from alpaca_vault.db.engine import DatabaseError
    from alpaca_vault.server.settings import SettingsError

    async def main() -> T:
        async with account_admin(audited=audited) as admin:
            return await action(admin)

    from alpaca_vault.server.commands.credentials import fail

    try:
        return asyncio.run(main())
    except SettingsError as exc:
        raise fail(str(exc), 2) from None
    except (AccountError, DatabaseError) as exc:
        raise fail(str(exc)) from None
    except AuditUnavailable as exc:
        raise fail(f"{exc}; nothing was changed") from None
    except OSError as exc:  # e.g. PostgreSQL unreachable
        raise fail(f"cannot reach the database: {exc.strerror or exc}") from None
    except DBAPIError as exc:  # e.g. wrong password, missing grant: the driver's first line says which
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise fail(f"the database refused: {reason}") from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


def format_when(value: object) -> str:
    from datetime import datetime

    return value.strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, datetime) else "-"


@app.command("add")
def add(name: Annotated[str, typer.Argument(help="A unique user name, e.g. alice.")]) -> None:
    """Create a user. Then give it a token: alpaca-vault tokens create --user NAME."""
    from alpaca_vault.server.commands.audit import require_audit_keys

    require_audit_keys()  # no key ring, no signed record: refuse before changing anything
    user = run_admin(lambda admin: admin.add_user(name), audited=True)  # user.add in the same transaction
    typer.echo(f"Added user '{user.name}' (id {user.id}).")
    typer.echo(f"Next: {program()} tokens create --user {user.name}", err=True)


@app.command("list")
def list_users(
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List users with how many credentials and tokens each has."""
    users = run_admin(lambda admin: admin.list_users())
    if json_output:
        rows = [
            {
                "id": str(u.id),
                "name": u.name,
                "is_active": u.is_active,
                "created_at": u.created_at.isoformat(),
                "credentials": u.credentials,
                "tokens": u.tokens,
            }
            for u in users
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not users:
        typer.echo(f"No users yet. `{program()} users add NAME` creates one.", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "id", "active", "credentials", "tokens", "created")
    for u in users:
        table.add_row(
            u.name,
            str(u.id),
            "yes" if u.is_active else "no",
            str(u.credentials),
            str(u.tokens),
            format_when(u.created_at),
        )
    Console(file=sys.stdout, width=200).print(table)


@app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The user to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    shred: Annotated[
        bool,
        typer.Option(
            "--shred",
            help="Also erase the freed bytes from the database files now (SQLite: VACUUM and a WAL "
            "checkpoint; PostgreSQL: VACUUM FULL of data_keys), not only when the space is reused.",
        ),
    ] = False,
) -> None:
    """Delete a user with all its credentials and tokens, destroying its data key first.

    The data key is destroyed (crypto-shredded) in its own transaction before anything is deleted,
    so the user's sealed values cannot be opened from this database or any backup of it taken
    afterwards. Backups taken before still hold them: see docs/vault.md.
    """
    from alpaca_vault.server.commands.credentials import fail

    if not yes:
        if not sys.stdin.isatty():
            raise fail("pass --yes to remove a user non-interactively.")
        typer.confirm(f"Delete user '{name}' with all its credentials and tokens?", abort=True, err=True)
    from alpaca_vault.server.commands.audit import require_audit_keys

    require_audit_keys()  # no key ring, no signed record: refuse before changing anything

    async def action(admin: AccountAdmin) -> tuple[UserRecord, ShredResult | None]:
        from alpaca_vault.vault.datakeys import erase_freed_space, shred_user

        user_id = await admin.user_id(name)
        shredded = await shred_user(admin.db, user_id) if user_id is not None else None
        record = await admin.remove_user(name)  # an unknown name fails here, with the known names
        if shred:
            await erase_freed_space(admin.db)
        return record, shredded

    # user.remove, the last entry of the removed user's chain, commits with the delete.
    user, shredded = run_admin(action, audited=True)
    typer.echo(
        f"Removed user '{user.name}' with {user.credentials} credential(s) and {user.tokens} token(s)."
    )
    if shredded is not None:
        typer.echo(
            f"Destroyed {shredded.data_keys_destroyed} data key(s) first: its sealed values cannot be opened "
            "from this database or from backups taken from now on."
            + (" Freed space erased." if shred else "")
        )
        typer.echo("Backups taken before still hold them under the master key (docs/vault.md).", err=True)
