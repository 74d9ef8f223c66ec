"""`alpaca-vault policy ...`: each credential's trading policy, owned by its human (no tool can change it)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from alpaca_vault.guard.policy import Policy
    from alpaca_vault.guard.store import PolicyStore

app = typer.Typer(
    help="Trading policies: limits, allowed symbols, confirmation and the kill switch, per credential.",
    no_args_is_help=True,
)

T = TypeVar("T")

UserOption = Annotated[
    str | None, typer.Option("--user", "-u", help="Whose credential (default: ALPACA_VAULT_USER, 'local').")
]
NameArgument = Annotated[str, typer.Argument(help="Credential name (or id).")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"alpaca-vault: {message}", err=True)
    return typer.Exit(code)


def _run(
    user: str | None, action: Callable[[PolicyStore, uuid.UUID, Any], Awaitable[T]], *, audited: bool = False
) -> T:
    """Open the database, resolve the user, run ``action``; expected failures are one stderr line.

    ``audited``: a change; ``action`` also gets the audit trail, to record it in the same transaction.
    """
    from sqlalchemy.exc import DBAPIError

    from alpaca_vault.audit.log import AuditUnavailable
    from alpaca_vault.db import Database, DatabaseError, ensure_schema
    from alpaca_vault.db.rls import lookup_user_id
    from alpaca_vault.guard.errors import GuardError
    from alpaca_vault.guard.store import PolicyStore
    from alpaca_vault.server.settings import SettingsError, load_settings
    from alpaca_vault.vault.errors import VaultError

    async def main() -> T:
        settings = load_settings()
        who = user or settings.user
        db = Database.create(settings.effective_database_url)
        try:
            await ensure_schema(db)
            async with db.session(readonly=True) as session:
                user_id = await lookup_user_id(session, who)
            if user_id is None:
                raise GuardError(
                    f"user '{who}' does not exist. `alpaca-vault credentials list --user NAME` shows a "
                    "user's credentials; `alpaca-vault users list` shows the users."
                )
            audit = None
            if audited:
                from alpaca_vault.audit.chain import ChainKeys
                from alpaca_vault.audit.log import AuditLog
                from alpaca_vault.server.hardening import may_create_key_file
                from alpaca_vault.vault.keyring import KeyRing

                keys = settings.encryption_keys.get_secret_value() if settings.encryption_keys else None
                keyring = KeyRing.load(keys, settings.data_dir, create_key_file=may_create_key_file(settings))
                audit = AuditLog(db, ChainKeys.from_keyring(keyring))
            try:
                return await action(PolicyStore(db), user_id, audit)
            finally:
                if audit is not None:
                    audit.close()
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except SettingsError as exc:
        raise _fail(str(exc), 2) from None
    except (GuardError, VaultError, DatabaseError, AuditUnavailable) as exc:
        raise _fail(str(exc)) from None
    except DBAPIError as exc:
        first_line = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise _fail(f"database error: {first_line}") from None
    except OSError as exc:
        raise _fail(f"cannot reach the database: {exc.strerror or exc}") from None


def describe(policy: Policy) -> list[tuple[str, str]]:
    """The policy as (field, value) lines a person reads (shared with the console)."""
    from alpaca_vault.guard.policy_input import describe as lines

    return lines(policy)


def _echo_policy(policy: Policy, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(policy.model_dump(mode="json"), indent=2))
        return
    origin = "defaults for a new credential" if policy.is_default else "set by its owner"
    typer.echo(f"Trading policy of '{policy.credential}' ({policy.environment}; {origin}):")
    width = max(len(label) for label, _ in describe(policy))
    for label, value in describe(policy):
        typer.echo(f"  {label:<{width}}  {value}")


@app.command("show")
def show(
    name: NameArgument,
    user: UserOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show the trading policy in force for a credential."""
    policy = _run(user, lambda store, uid, _audit: store.show(uid, name))
    _echo_policy(policy, as_json)


@app.command("set")
def set_(
    name: NameArgument,
    user: UserOption = None,
    mode: Annotated[
        str | None, typer.Option("--mode", metavar="read_only|trade", help="read_only refuses every change.")
    ] = None,
    max_order_notional: Annotated[
        str | None, typer.Option("--max-order-notional", metavar="USD|none", help="Per-order dollar limit.")
    ] = None,
    max_daily_notional: Annotated[
        str | None,
        typer.Option("--max-daily-notional", metavar="USD|none", help="Dollar limit per New York day."),
    ] = None,
    max_orders_per_day: Annotated[
        str | None, typer.Option("--max-orders-per-day", metavar="N|none", help="Orders per New York day.")
    ] = None,
    max_orders_per_minute: Annotated[
        str | None, typer.Option("--max-orders-per-minute", metavar="N|none", help="Orders per minute.")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option("--symbols", metavar="A,B|any", help="Allow only these symbols.")
    ] = None,
    deny_symbols: Annotated[
        str | None, typer.Option("--deny-symbols", metavar="A,B|none", help="Never these symbols.")
    ] = None,
    asset_classes: Annotated[
        str | None,
        typer.Option("--asset-classes", metavar="us_equity,crypto,us_option", help="Asset classes allowed."),
    ] = None,
    order_types: Annotated[
        str | None,
        typer.Option(
            "--order-types", metavar="market,limit,stop,stop_limit,trailing_stop", help="Order types allowed."
        ),
    ] = None,
    allow_short: Annotated[
        bool | None,
        typer.Option("--allow-short/--no-allow-short", help="Allow sells larger than the position."),
    ] = None,
    allow_extended_hours: Annotated[
        bool | None,
        typer.Option("--allow-extended-hours/--no-allow-extended-hours", help="Allow extended-hours orders."),
    ] = None,
    confirm_above_notional: Annotated[
        str | None,
        typer.Option(
            "--confirm-above-notional", metavar="USD|none", help="A human confirms orders above this value."
        ),
    ] = None,
    confirm_live: Annotated[
        bool | None,
        typer.Option("--confirm-live/--no-confirm-live", help="A human confirms every live change."),
    ] = None,
    duplicate_window: Annotated[
        str | None,
        typer.Option(
            "--duplicate-window",
            metavar="SECONDS",
            help="The same order under a new client_order_id within this window needs a human (0: off).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new policy as JSON.")] = False,
) -> None:
    """Change a credential's trading policy. Every value is checked first: a bad one changes nothing."""
    from alpaca_vault.guard.errors import PolicyInputError
    from alpaca_vault.guard.policy_input import parse_changes

    # One parser for the CLI and the console's form: the same rules and the same error texts.
    texts = {
        "mode": mode,
        "max_order_notional": max_order_notional,
        "max_daily_notional": max_daily_notional,
        "confirm_above_notional": confirm_above_notional,
        "max_orders_per_day": max_orders_per_day,
        "max_orders_per_minute": max_orders_per_minute,
        "symbols": symbols,
        "deny_symbols": deny_symbols,
        "asset_classes": asset_classes,
        "order_types": order_types,
        "duplicate_window_seconds": duplicate_window,
    }
    flags = {
        "allow_short": allow_short,
        "allow_extended_hours": allow_extended_hours,
        "confirm_live": confirm_live,
    }
    try:
        changes = parse_changes(texts, flags)
    except PolicyInputError as exc:
        raise _fail(str(exc)) from None
    if not changes:
        raise _fail("nothing to change: give at least one option (see `alpaca-vault policy set --help`).")
    policy = _run(user, lambda store, uid, audit: store.update(uid, name, changes, audit=audit), audited=True)
    if not as_json:
        typer.echo(f"Updated the trading policy of '{policy.credential}'.")
    _echo_policy(policy, as_json)
    if policy.environment == "live" and policy.mode == "trade":
        typer.echo(
            "Note: a live credential also needs ALPACA_VAULT_ALLOW_LIVE_TRADING=true on the server to trade.",
            err=True,
        )


def _halt_or_resume(name: str | None, all_: bool, user: str | None, halted: bool) -> None:
    verb = "halt" if halted else "resume"
    if (name is None) == (not all_):
        raise _fail(f"give a credential name or --all (not both): alpaca-vault policy {verb} NAME")
    policies = _run(
        user,
        lambda store, uid, audit: store.set_halted(uid, None if all_ else name, halted, audit=audit),
        audited=True,
    )
    if not policies:
        typer.echo("No credentials to change.", err=True)
        return
    for policy in policies:
        if halted:
            typer.echo(
                f"Halted '{policy.credential}' ({policy.environment}): new orders and replaces are refused "
                "from the next call on every server; cancels and closes still work."
            )
        else:
            typer.echo(f"Resumed '{policy.credential}' ({policy.environment}): its policy applies again.")


@app.command("halt")
def halt(
    name: Annotated[str | None, typer.Argument(help="Credential name (or id); or --all.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every credential of the user.")] = False,
    user: UserOption = None,
) -> None:
    """Kill switch: refuse new orders and replaces (cancels and closes still go through)."""
    _halt_or_resume(name, all_, user, True)


@app.command("resume")
def resume(
    name: Annotated[str | None, typer.Argument(help="Credential name (or id); or --all.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every credential of the user.")] = False,
    user: UserOption = None,
) -> None:
    """Lift the kill switch."""
    _halt_or_resume(name, all_, user, False)
