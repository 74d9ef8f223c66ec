"""`alpaca-vault credentials ...`: Store, list, validate and remove Alpaca credentials.

Secrets come from a hidden prompt, or from the first two lines of stdin when
it is not a terminal; never from argv, never echoed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from alpaca_vault.vault.key_ids import check_key_environment

if TYPE_CHECKING:
    from pydantic import SecretStr

    from alpaca_vault.db import Database
    from alpaca_vault.server.settings import Settings
    from alpaca_vault.vault import CredentialInfo, CredentialService, KeyRing

app = typer.Typer(help="Store, list, validate and remove Alpaca credentials.", no_args_is_help=True)

T = TypeVar("T")

UserOption = Annotated[
    str | None, typer.Option("--user", "-u", help="Whose credentials (default: ALPACA_VAULT_USER, 'local').")
]


class Environment(StrEnum):
    paper = "paper"
    live = "live"


@dataclass
class VaultContext:
    settings: Settings
    db: Database
    keyring: KeyRing
    service: CredentialService


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"alpaca-vault: {message}", err=True)
    return typer.Exit(code)


@asynccontextmanager
async def open_vault(*, schema: bool = True) -> AsyncIterator[VaultContext]:
    """Settings, key ring, database (schema checked; an embedded SQLite file is upgraded) and service."""
    from alpaca_vault.db import ensure_schema
    from alpaca_vault.server.hardening import may_create_key_file
    from alpaca_vault.server.settings import load_settings
    from alpaca_vault.vault import CredentialService, KeyRing

    settings = load_settings()
    keys = settings.encryption_keys.get_secret_value() if settings.encryption_keys else None
    # Only the embedded SQLite vault may make its own key; a shared database needs the replicas' keys.
    keyring = KeyRing.load(keys, settings.data_dir, create_key_file=may_create_key_file(settings))
    db = settings.open_database()
    try:
        if schema:
            await ensure_schema(db)
        yield VaultContext(settings, db, keyring, CredentialService(db, keyring))
    finally:
        await db.dispose()


def run(action: Callable[[], Awaitable[T]]) -> T:
    """Run one command; expected failures become one stderr line and exit 1 (2 for bad settings)."""
    from sqlalchemy.exc import DBAPIError

    from alpaca_vault.db import DatabaseError
    from alpaca_vault.server.settings import SettingsError
    from alpaca_vault.vault import VaultError

    try:
        return asyncio.run(action())  # type: ignore[arg-type]
    except SettingsError as exc:
        raise fail(str(exc), 2) from None
    except (VaultError, DatabaseError) as exc:
        raise fail(str(exc)) from None
    except DBAPIError as exc:
        # hide_parameters keeps values out; still show only the driver's first line.
        first_line = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise fail(f"database error: {first_line}") from None
    except OSError as exc:  # e.g. PostgreSQL unreachable
        raise fail(f"cannot reach the database: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


def read_key_pair() -> tuple[SecretStr, SecretStr]:
    """Hidden prompts on a terminal; otherwise the first two lines of stdin."""
    from pydantic import SecretStr

    if sys.stdin.isatty():
        api_key = typer.prompt("Alpaca API key id", hide_input=True, err=True)
        secret_key = typer.prompt("Alpaca secret key", hide_input=True, err=True)
    else:
        api_key = sys.stdin.readline().strip()
        secret_key = sys.stdin.readline().strip()
        if not api_key or not secret_key:
            raise fail(
                "expected the API key id on the first line of standard input "
                "and the secret key on the second."
            )
    return SecretStr(api_key), SecretStr(secret_key)


async def validate_with_alpaca(
    settings: Settings, environment: str, api_key: SecretStr, secret_key: SecretStr, *, storing: bool = True
) -> tuple[str, str]:
    """Check the pair against Alpaca; return (account_number, account_status) or refuse with the reason."""
    from alpaca_vault.broker.client import AlpacaClient, AlpacaKeys
    from alpaca_vault.broker.errors import AlpacaAuthError, AlpacaError
    from alpaca_vault.vault.errors import InvalidCredentialInput

    nothing_stored = " Nothing was stored." if storing else ""
    check_key_environment(api_key, environment)
    keys = AlpacaKeys(api_key=api_key, secret_key=secret_key, environment=environment, limiter_key="cli")  # type: ignore[arg-type]
    async with AlpacaClient(
        paper_url=settings.paper_url,
        live_url=settings.live_url,
        data_url=settings.data_url,
        timeout=settings.http_timeout,
    ) as broker:
        try:
            account = await broker.get_account(keys)
        except AlpacaAuthError:
            other = "live" if environment == "paper" else "paper"
            raise InvalidCredentialInput(
                f"Alpaca did not accept this key pair on the {environment} endpoint (401). Check the key id "
                f"and secret; if they are {other} keys use --environment {other}.{nothing_stored}"
            ) from None
        except AlpacaError as exc:
            raise InvalidCredentialInput(
                f"could not check the keys with Alpaca: {exc}{nothing_stored}"
                + (" --no-validate stores without checking." if storing else "")
            ) from None
    if account.status.upper() != "ACTIVE":
        raise InvalidCredentialInput(
            f"Alpaca account {account.account_number} is {account.status}, not ACTIVE, so it cannot trade."
            + (" Nothing was stored; --no-validate stores it anyway." if storing else "")
        )
    return account.account_number, account.status


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for this key pair, e.g. paper-main.")],
    environment: Annotated[
        Environment, typer.Option("--environment", "-e", help="Which Alpaca environment the keys belong to.")
    ],
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Store without checking the keys against Alpaca.")
    ] = False,
    user: UserOption = None,
) -> None:
    """Store an Alpaca key pair, read from a hidden prompt (or the first two lines of stdin)."""
    api_key, secret_key = read_key_pair()

    async def action() -> CredentialInfo:
        async with open_vault() as vault:
            account: tuple[str | None, str | None] = (None, None)
            check_key_environment(api_key, environment.value)
            if not no_validate:
                account = await validate_with_alpaca(vault.settings, environment.value, api_key, secret_key)
            owner = await vault.service.ensure_user(user or vault.settings.user)
            return await vault.service.store(
                owner.id,
                name,
                environment.value,
                api_key,
                secret_key,
                account_number=account[0],
                account_status=account[1],
                validated=not no_validate,
            )

    info = run(action)
    typer.echo(f"Stored credential '{info.name}' ({info.environment}) for user '{user or _default_user()}'.")
    if no_validate:
        typer.echo(
            "Not validated against Alpaca (--no-validate); `alpaca-vault credentials validate` checks it."
        )
    else:
        typer.echo(f"Alpaca accepted it: account {info.account_number}, {info.account_status}.")


@app.command("validate")
def validate(
    name: Annotated[str, typer.Argument(help="Credential name (or id).")],
    user: UserOption = None,
) -> None:
    """Check a stored credential with Alpaca now and record its account number and status."""

    async def action() -> tuple[str, str, str]:
        from alpaca_vault.vault import CredentialNotFound

        async with open_vault() as vault:
            who = user or vault.settings.user
            owner = await vault.service.find_user(who)
            if owner is None:
                raise CredentialNotFound(f"User '{who}' has no credentials.")
            async with vault.service.unsealed(owner.id, name) as opened:
                info = opened.info
                number, status = await validate_with_alpaca(
                    vault.settings, info.environment, opened.api_key, opened.secret_key, storing=False
                )
            await vault.service.record_validation(
                owner.id, info.id, account_number=number, account_status=status
            )
            return info.name, number, status

    shown, number, status = run(action)
    typer.echo(f"Alpaca accepted credential '{shown}': account {number}, {status}.")


def _default_user() -> str:
    from alpaca_vault.server.settings import load_settings

    return load_settings().user


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    user: UserOption = None,
) -> None:
    """List credentials (names and metadata; never keys)."""

    async def action() -> tuple[str, list[CredentialInfo]]:
        async with open_vault() as vault:
            who = user or vault.settings.user
            owner = await vault.service.find_user(who)
            return who, ([] if owner is None else await vault.service.list(owner.id))

    who, credentials = run(action)
    if as_json:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in credentials], indent=2))
        return
    if not credentials:
        typer.echo(
            f"No credentials for user '{who}'. Add one with "
            "`alpaca-vault credentials add NAME --environment paper`."
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Credentials of '{who}'")
    for column in ("Name", "Environment", "Active", "Account", "Status", "Validated", "Last used", "Id"):
        table.add_column(column)
    for c in credentials:
        table.add_row(
            c.name,
            c.environment,
            "yes" if c.is_active else "no",
            c.account_number or "-",
            c.account_status or "-",
            _when(c.last_validated_at),
            _when(c.last_used_at),
            str(c.id),
        )
    Console(width=160).print(table)


@app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="Credential name (or id).")],
    user: UserOption = None,
) -> None:
    """Delete a credential and its sealed keys."""

    async def action() -> CredentialInfo:
        from alpaca_vault.vault import CredentialNotFound

        async with open_vault() as vault:
            who = user or vault.settings.user
            owner = await vault.service.find_user(who)
            if owner is None:
                raise CredentialNotFound(f"User '{who}' has no credentials.")
            return await vault.service.delete(owner.id, name)

    info = run(action)
    typer.echo(f"Removed credential '{info.name}'.")
