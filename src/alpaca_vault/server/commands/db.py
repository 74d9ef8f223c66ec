"""`alpaca-vault db ...`: Database schema management."""

from __future__ import annotations

import typer

from alpaca_vault.server.commands.credentials import run

app = typer.Typer(help="Database schema management.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply every migration to ALPACA_VAULT_DATABASE_URL (default: the SQLite file in the data dir)."""
    from sqlalchemy import make_url

    from alpaca_vault.db.migrate import head_revision
    from alpaca_vault.db.migrate import upgrade as upgrade_to_head
    from alpaca_vault.server.settings import load_settings

    async def action() -> str:
        settings = load_settings()
        url = settings.effective_database_url
        await upgrade_to_head(url)
        return make_url(url).render_as_string(hide_password=True)

    where = run(action)
    typer.echo(f"Database {where} is at revision {head_revision()} (latest).")
