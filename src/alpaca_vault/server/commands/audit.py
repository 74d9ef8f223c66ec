"""`alpaca-vault audit ...`: read, verify and export the audit trail (run as the tables' owner)."""

from __future__ import annotations

import csv
import json
import sys
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from alpaca_vault.server.commands.credentials import fail, open_vault, run

if TYPE_CHECKING:
    from alpaca_vault.audit import AuditEventInfo, AuditLog, VerifyReport
    from alpaca_vault.server.commands.credentials import VaultContext

app = typer.Typer(
    help="The audit trail: every decrypt and every order, in a per-user chain of keyed MACs.",
    no_args_is_help=True,
)

UserFilter = Annotated[str | None, typer.Option("--user", "-u", help="Only this user (name or id).")]
MAX_LIMIT = 100_000
CSV_COLUMNS = (
    "user",
    "user_id",
    "seq",
    "at",
    "actor",
    "action",
    "credential",
    "credential_id",
    "tool",
    "details",
    "kid",
    "prev_hash",
    "hash",
)


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def audit_log(vault: VaultContext) -> AuditLog:
    from alpaca_vault.audit import AuditLog, ChainKeys

    # The CLI reads every user's chain: on PostgreSQL that needs the tables' owner (maintenance policy).
    return AuditLog(vault.db, ChainKeys.from_keyring(vault.keyring)).as_owner()


async def resolve_user(vault: VaultContext, user: str | None) -> uuid.UUID | None:
    """The id for --user (a name, or an id, e.g. of a removed user); None when not given."""
    if user is None:
        return None
    found = await vault.service.find_user(user)
    if found is not None:
        return found.id
    try:
        return uuid.UUID(user)
    except ValueError:
        raise fail(f"No user named '{user}'. `alpaca-vault users list` shows them.") from None


def _parse_since(since: str | None) -> datetime | None:
    if since is None:
        return None
    try:
        value = datetime.fromisoformat(since)
    except ValueError:
        raise fail(
            f"--since {since!r} is not an ISO date or time, e.g. 2026-12-01 or 2026-12-01T09:30Z."
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _summary(details: dict[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in details.items())


@app.command("list")
def list_events(
    user: UserFilter = None,
    credential: Annotated[
        str | None, typer.Option("--credential", help="Only this credential (name or id).")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action, e.g. order.intent.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only events at or after this ISO time.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="At most this many (newest first).")
    ] = 100,
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine-readable output (one JSON array).")
    ] = False,
) -> None:
    """List audit events, newest first: who did what with which credential, and what came of it."""
    from alpaca_vault.db.models import AUDIT_ACTIONS

    if action is not None and action not in AUDIT_ACTIONS:
        raise fail(f"Unknown action {action!r}. Actions: {', '.join(AUDIT_ACTIONS)}.")
    when = _parse_since(since)

    async def read() -> list[AuditEventInfo]:
        async with open_vault() as vault:
            uid = await resolve_user(vault, user)
            log = audit_log(vault)
            return await log.events(uid, credential=credential, action=action, since=when, limit=limit)

    events = run(read)
    if as_json:
        typer.echo(json.dumps([e.to_json() for e in events], indent=2))
        return
    if not events:
        typer.echo("No audit events match.", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("at", "user", "seq", "actor", "action", "credential", "tool", "details")
    for e in events:
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            e.user_name or str(e.user_id),
            str(e.seq),
            e.actor,
            e.action,
            e.credential_name or "-",
            e.tool or "-",
            _summary(e.details),
            # Names and details are data (a credential name is the user's text): never markup.
        )
    Console(file=sys.stdout, width=220, markup=False, highlight=False).print(table)


@app.command("verify")
def verify(user: UserFilter = None) -> None:
    """Check every chain (or one user's): exit 0 when intact, else 1 naming the user and the first bad seq."""

    async def check() -> VerifyReport:
        async with open_vault() as vault:
            uid = await resolve_user(vault, user)
            return await audit_log(vault).verify(uid)

    report = run(check)
    if report.ok:
        typer.echo(f"OK: {report.events} event(s) of {report.users} user(s) verified; every chain is intact.")
        return
    for problem in report.problems:
        # A key the ring no longer holds proves nothing either way; every other failure is tampering.
        typer.echo(f"{'UNVERIFIABLE' if problem.unverifiable else 'TAMPERED'}: {problem}")
    typer.echo(
        f"{len(report.problems)} of {report.users} chain(s) failed verification ({report.events} event(s) read).",
        err=True,
    )
    raise typer.Exit(1)


@app.command("export")
def export(
    user: UserFilter = None,
    format: Annotated[
        ExportFormat, typer.Option("--format", help="jsonl (one event per line) or csv.")
    ] = ExportFormat.jsonl,
) -> None:
    """Write every event (oldest first per user) to stdout, with its hashes, for archiving or a SIEM."""

    async def write() -> int:
        count = 0
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS) if format is ExportFormat.csv else None
        if writer is not None:
            writer.writeheader()
        async with open_vault() as vault:
            uid = await resolve_user(vault, user)
            async for event in audit_log(vault).export(uid):
                row = event.to_json()
                if writer is not None:
                    writer.writerow(
                        {
                            **{
                                k: row[k] for k in ("user", "user_id", "seq", "at", "actor", "action", "tool")
                            },
                            "credential": row["credential"],
                            "credential_id": row["credential_id"],
                            "details": json.dumps(row["details"], sort_keys=True),
                            "kid": row["kid"],
                            "prev_hash": row["prev_hash"],
                            "hash": row["hash"],
                        }
                    )
                else:
                    sys.stdout.write(json.dumps(row, sort_keys=True) + "\n")
                count += 1
        return count

    count = run(write)
    typer.echo(f"Exported {count} event(s).", err=True)


# --- the CLI's own events: changes made from the terminal are on record too ----------------------


async def record_cli_event(
    vault: VaultContext,
    user_id: uuid.UUID,
    action: str,
    *,
    credential_id: uuid.UUID | None = None,
    credential_name: str | None = None,
    details: dict[str, object] | None = None,
) -> None:
    """Append one event with actor ``cli``; a failure is a clear error (exit 1), never a traceback."""
    from alpaca_vault.audit import AuditLog, AuditUnavailable, ChainKeys
    from alpaca_vault.audit.chain import CLI

    log = AuditLog(vault.db, ChainKeys.from_keyring(vault.keyring))
    try:
        await log.append(
            user_id,
            action,
            CLI,
            credential_id=credential_id,
            credential_name=credential_name,
            details=details,
        )
    except AuditUnavailable as exc:
        raise fail(
            f"{exc}; check that the database is writable, then run `alpaca-vault audit verify`."
        ) from None
    finally:
        log.close()


def require_audit_keys() -> None:
    """Fail before an admin change when its audit record could not be signed (no key ring configured)."""

    async def check() -> None:
        async with open_vault(schema=False):
            pass

    run(check)
