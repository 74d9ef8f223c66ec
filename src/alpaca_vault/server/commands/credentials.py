"""`alpaca-vault credentials ...`: Store, list, validate, update and remove Alpaca credentials.

Secrets come from a hidden prompt, or from the first two lines of stdin when
it is not a terminal; never from argv, never echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
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

app = typer.Typer(help="Store, list, validate, update and remove Alpaca credentials.", no_args_is_help=True)

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
    """One stderr line, ``alpaca-vault: <what went wrong>. <what to run>``, runnable from this shell."""
    from alpaca_vault.server.hints import runnable

    typer.echo(f"alpaca-vault: {runnable(message)}", err=True)
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
    except typer.Exit:
        raise
    except VaultError as exc:
        raise fail(_with_next_step(exc)) from None
    except DatabaseError as exc:
        raise fail(str(exc)) from None
    except DBAPIError as exc:
        # hide_parameters keeps values out; still show only the driver's first line.
        first_line = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise fail(f"database error: {first_line}") from None
    except BrokenPipeError:
        # The reader of stdout went away (`audit export | head -1`): nothing to say, and nowhere to say it
        # on stdout. Point stdout at /dev/null so the interpreter's final flush does not fail again.
        with contextlib.suppress(OSError, ValueError):  # stdout may be no file at all (an embedding caller)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        raise typer.Exit(1) from None
    except OSError as exc:  # e.g. PostgreSQL unreachable
        raise fail(f"cannot reach the database: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


_NAMED = re.compile(r"'([^']+)'")


def _with_next_step(exc: Exception) -> str:
    """A vault error (facts only) plus what to run next, in CLI words: one table keyed by class."""
    from alpaca_vault.server.hints import program
    from alpaca_vault.vault import CredentialExists, CredentialInactive, CredentialNotFound, DuplicateKeyPair
    from alpaca_vault.vault.errors import CredentialDamaged

    text = str(exc)
    named = _NAMED.search(text)
    name = shlex.quote(named.group(1)) if named else "NAME"
    cmd = program()
    steps: dict[type[Exception], str] = {
        CredentialInactive: f"`{cmd} credentials update {name} --activate` activates it.",
        CredentialExists: f"Choose another name, or replace its keys with `{cmd} credentials update {name} "
        "--replace-keys`.",
        DuplicateKeyPair: f"`{cmd} credentials remove {name}` removes it.",
        CredentialNotFound: f"`{cmd} credentials list` shows them all.",
        CredentialDamaged: f"`{cmd} credentials remove {name}` removes it; then "
        f"`{cmd} credentials add {name} --environment paper|live` stores the pair again.",
    }
    step = next((hint for kind, hint in steps.items() if isinstance(exc, kind)), "")
    if isinstance(exc, CredentialNotFound) and not getattr(exc, "available", ()):
        step = ""  # nothing stored: the message already says how to add one
    return f"{text} {step}".strip()


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
    from alpaca_vault.broker.client import AlpacaClient, AlpacaKeys, RetryPolicy
    from alpaca_vault.broker.errors import AlpacaAuthError, AlpacaConnectionError, AlpacaError, AlpacaTimeout
    from alpaca_vault.vault.errors import InvalidCredentialInput

    nothing_stored = " Nothing was stored." if storing else ""
    check_key_environment(api_key, environment)
    keys = AlpacaKeys(api_key=api_key, secret_key=secret_key, environment=environment, limiter_key="cli")  # type: ignore[arg-type]
    endpoint = settings.paper_url if environment == "paper" else settings.live_url
    async with AlpacaClient(
        paper_url=settings.paper_url,
        live_url=settings.live_url,
        data_url=settings.data_url,
        timeout=settings.http_timeout,
        # One attempt: a person at the terminal re-runs the command; retries would only add noise and wait.
        retry=RetryPolicy(attempts=1),
    ) as broker:
        try:
            account = await broker.get_account(keys)
        except (AlpacaConnectionError, AlpacaTimeout) as exc:
            reason = "no answer in time" if isinstance(exc, AlpacaTimeout) else "connection failed"
            raise InvalidCredentialInput(
                f"could not reach Alpaca at {endpoint} ({reason}).{nothing_stored}"
                + (
                    " --no-validate stores without checking."
                    if storing
                    else " Check the network and try again."
                )
            ) from None
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
        from alpaca_vault.server.commands.audit import record_cli_event

        async with open_vault() as vault:
            account: tuple[str | None, str | None] = (None, None)
            check_key_environment(api_key, environment.value)
            if not no_validate:
                account = await validate_with_alpaca(vault.settings, environment.value, api_key, secret_key)
            owner = await vault.service.ensure_user(user or vault.settings.user)
            stored = await vault.service.store(
                owner.id,
                name,
                environment.value,
                api_key,
                secret_key,
                account_number=account[0],
                account_status=account[1],
                validated=not no_validate,
            )
            await record_cli_event(
                vault,
                owner.id,
                "credential.store",
                credential_id=stored.id,
                credential_name=stored.name,
                details={"environment": stored.environment},
            )
            return stored

    info = run(action)
    typer.echo(f"Stored credential '{info.name}' ({info.environment}) for user '{user or _default_user()}'.")
    if no_validate:
        typer.echo(
            f"Not validated against Alpaca (--no-validate); `{_program()} credentials validate {info.name}` "
            "checks it."
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
        from alpaca_vault.server.commands.audit import record_cli_event
        from alpaca_vault.vault import CredentialNotFound

        async with open_vault() as vault:
            who = user or vault.settings.user
            owner = await vault.service.find_user(who)
            if owner is None:
                raise CredentialNotFound(f"User '{who}' has no credentials.")
            found = await vault.service.get(owner.id, name)
            # Fail closed like the server: no audit record, no decrypt.
            await record_cli_event(
                vault, owner.id, "credential.unseal", credential_id=found.id, credential_name=found.name
            )
            async with vault.service.unsealed(owner.id, str(found.id)) as opened:
                info = opened.info
                number, status = await validate_with_alpaca(
                    vault.settings, info.environment, opened.api_key, opened.secret_key, storing=False
                )
            await vault.service.record_validation(
                owner.id, info.id, account_number=number, account_status=status
            )
            await record_cli_event(
                vault,
                owner.id,
                "credential.validate",
                credential_id=info.id,
                credential_name=info.name,
                details={"status": status},
            )
            return info.name, number, status

    shown, number, status = run(action)
    typer.echo(f"Alpaca accepted credential '{shown}': account {number}, {status}.")


@app.command("update")
def update(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Credential name (or id).")],
    rename: Annotated[
        str | None, typer.Option("--rename", metavar="NEW_NAME", help="Give it a new name.")
    ] = None,
    active: Annotated[
        bool | None,
        typer.Option(
            "--activate/--deactivate",
            help="Allow or stop its use by agents (a deactivated credential is never unsealed).",
            show_default=False,
        ),
    ] = None,
    replace_keys: Annotated[
        bool,
        typer.Option(
            "--replace-keys",
            help="Replace the key pair, read from a hidden prompt (or the first two lines of stdin).",
        ),
    ] = False,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="With --replace-keys: store without checking with Alpaca.")
    ] = False,
    user: UserOption = None,
) -> None:
    """Rename, activate or deactivate a credential, or replace its key pair."""
    if rename is None and active is None and not replace_keys:
        raise fail(
            "nothing to change: pass --rename NEW_NAME, --activate, --deactivate or --replace-keys.", 2
        )
    if no_validate and not replace_keys:
        raise fail("--no-validate only applies with --replace-keys.", 2)
    api_key, secret_key = read_key_pair() if replace_keys else (None, None)

    async def action() -> tuple[CredentialInfo, CredentialInfo]:
        from alpaca_vault.server.commands.audit import record_cli_event
        from alpaca_vault.vault import CredentialNotFound

        async with open_vault() as vault:
            who = user or vault.settings.user
            owner = await vault.service.find_user(who)
            if owner is None:
                raise CredentialNotFound(f"User '{who}' has no credentials.")
            before = await vault.service.get(owner.id, name)
            account: tuple[str | None, str | None] = (None, None)
            if api_key is not None and secret_key is not None:
                check_key_environment(api_key, before.environment)
                if not no_validate:
                    account = await validate_with_alpaca(
                        vault.settings, before.environment, api_key, secret_key, storing=False
                    )
            # On record before anything changes, as from a tool or the console: if the event cannot be
            # written, the credential stays as it was (fail closed).
            asked = [
                *([f"rename to {rename}"] if rename is not None and rename != before.name else []),
                *([("activate" if active else "deactivate")] if active is not None else []),
                *(["replace the key pair"] if api_key is not None else []),
            ]
            if not asked:  # e.g. a rename to the name it has: nothing will change, nothing to record
                return before, before
            await record_cli_event(
                vault,
                owner.id,
                "credential.update",
                credential_id=before.id,
                credential_name=before.name,
                details={"changes": "; ".join(asked), "environment": before.environment},
            )
            after = await vault.service.update(
                owner.id,
                str(before.id),
                name=rename,
                is_active=active,
                api_key=api_key,
                secret_key=secret_key,
            )
            if account[0] is not None:
                await vault.service.record_validation(
                    owner.id, after.id, account_number=account[0], account_status=account[1]
                )
                after = await vault.service.get(owner.id, str(after.id))
            return before, after

    before, after = run(action)
    changes: list[str] = []
    if after.name != before.name:
        changes.append(f"renamed to '{after.name}'")
    if active is not None:
        changes.append("activated" if after.is_active else "deactivated")
    if replace_keys:
        if no_validate:
            changes.append(
                f"key pair replaced, not validated (`{_program()} credentials validate {after.name}` checks it)"
            )
        else:
            changes.append(
                f"key pair replaced; Alpaca accepted it: account {after.account_number}, {after.account_status}"
            )
    typer.echo(f"Updated credential '{before.name}': " + "; ".join(changes or ["no change"]) + ".")


def _program() -> str:
    from alpaca_vault.server.hints import program

    return program()


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
            f"`{_program()} credentials add NAME --environment paper`."
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Credentials of '{who}'")
    columns = ("Name", "Environment", "Keys", "Active", "Account", "Status", "Validated", "Last used", "Id")
    for column in columns:
        table.add_column(column)
    for c in credentials:
        table.add_row(
            c.name,
            c.environment,
            "DAMAGED" if c.status == "damaged" else "ok",
            "yes" if c.is_active else "no",
            c.account_number or "-",
            c.account_status or "-",
            _when(c.last_validated_at),
            _when(c.last_used_at),
            str(c.id),
        )
    Console(width=160).print(table)
    owner = f" --user {shlex.quote(who)}" if user else ""
    for c in credentials:
        if c.status == "damaged":
            name = shlex.quote(c.name)
            typer.echo(
                f"Credential '{c.name}' is damaged ({c.problem}): no key can open it. Remove it with "
                f"`{_program()} credentials remove {name}{owner}` and store the key pair again with "
                f"`{_program()} credentials add {name} --environment {c.environment}{owner}`."
            )


@app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="Credential name (or id).")],
    user: UserOption = None,
) -> None:
    """Delete a credential and its sealed keys."""

    async def action() -> CredentialInfo:
        from alpaca_vault.server.commands.audit import record_cli_event
        from alpaca_vault.vault import CredentialNotFound

        async with open_vault() as vault:
            who = user or vault.settings.user
            owner = await vault.service.find_user(who)
            if owner is None:
                raise CredentialNotFound(f"User '{who}' has no credentials.")
            deleted = await vault.service.delete(owner.id, name)
            await record_cli_event(
                vault, owner.id, "credential.delete", credential_id=deleted.id, credential_name=deleted.name
            )
            return deleted

    info = run(action)
    typer.echo(f"Removed credential '{info.name}'.")
