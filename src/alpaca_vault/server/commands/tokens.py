"""`alpaca-vault tokens ...`: Bearer tokens for the HTTP transport."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Annotated

import typer

from alpaca_vault.server.commands.users import format_when, run_admin
from alpaca_vault.server.hints import program

app = typer.Typer(help="Bearer tokens for the HTTP transport.", no_args_is_help=True)

DEFAULT_EXPIRY_DAYS = 90


@app.command("create")
def create(
    user: Annotated[str, typer.Option("--user", help="The user the token acts as.")],
    name: Annotated[str, typer.Option("--name", help="A label to recognise the token by.")] = "default",
    expires_in: Annotated[
        int,
        typer.Option(
            "--expires-in", min=0, max=3650, metavar="DAYS", help="Days until it expires; 0 = never."
        ),
    ] = DEFAULT_EXPIRY_DAYS,
    console: Annotated[
        bool,
        typer.Option(
            "--console",
            help="A console sign-in token (avc_...) for a person: it signs in to the web console and opens "
            "no MCP connection. Without it, an agent's token (avt_...): MCP only, never the console.",
        ),
    ] = False,
) -> None:
    """Create a token and print it once on stdout. Only its hash is stored: copy it now."""
    expiry = None if expires_in == 0 else timedelta(days=expires_in)
    from alpaca_vault.server.commands.audit import require_audit_keys

    require_audit_keys()
    # token.create commits with the token: no token exists without its record.
    issued = run_admin(
        lambda admin: admin.create_token(
            user, name=name, expires_in=expiry, kind="console" if console else "agent"
        ),
        audited=True,
    )
    # stdout carries the token alone, so `TOKEN=$(alpaca-vault tokens create ...)` works; the rest is stderr.
    typer.echo(issued.token.get_secret_value())
    record = issued.record
    expires = format_when(record.expires_at) if record.expires_at else "never"
    if console:
        use = (
            "It is shown only this once and cannot be recovered; keep it in a password manager, never in an\n"
            "MCP client's configuration. Paste it on the console's sign-in page (/console/sign-in on the\n"
            "HTTP server). It opens no MCP connection.\n"
        )
    else:
        use = (
            "It is shown only this once and cannot be recovered; store it in your MCP client's secret store.\n"
            "Use it on the HTTP transport as the header:  Authorization: Bearer <the token above>\n"
            f"It does not sign in to the web console: for that, `{program()} tokens create --console`.\n"
        )
    kind_name = "console sign-in token" if console else "token"
    typer.echo(
        f"\nCreated {kind_name} '{record.name}' for user '{record.user}' (id {record.id}, prefix "
        f"{record.prefix}, expires {expires}).\n"
        + use
        + f"Revoke it with: {program()} tokens revoke {record.id}",
        err=True,
    )


@app.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List tokens: id, user, name, prefix, created, last used, expiry, status. Never the token itself."""
    records = run_admin(lambda admin: admin.list_tokens(user))
    if json_output:
        rows = [
            {
                "id": str(r.id),
                "user": r.user,
                "name": r.name,
                "prefix": r.prefix,
                "created_at": r.created_at.isoformat(),
                "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
                "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
                "status": r.status(),
            }
            for r in records
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not records:
        typer.echo(f"No tokens. `{program()} tokens create --user NAME` makes one.", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "user", "name", "prefix", "created", "last used", "expires", "status")
    for r in records:
        table.add_row(
            str(r.id),
            r.user,
            r.name,
            r.prefix,
            format_when(r.created_at),
            format_when(r.last_used_at),
            format_when(r.expires_at) if r.expires_at else "never",
            r.status(),
        )
    Console(file=sys.stdout, width=200).print(table)


@app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id or prefix from `tokens list`.")],
) -> None:
    """Revoke a token: the next request that presents it is refused with 401."""
    from alpaca_vault.server.commands.audit import require_audit_keys

    require_audit_keys()
    record, revoked_now = run_admin(lambda admin: admin.revoke_token(token_id), audited=True)
    if revoked_now:
        typer.echo(f"Revoked token '{record.name}' ({record.prefix}) of user '{record.user}'.")
    else:
        typer.echo(f"Token '{record.name}' ({record.prefix}) of user '{record.user}' was already revoked.")
