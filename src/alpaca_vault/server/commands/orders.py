"""`alpaca-vault orders ...`: durable order intents."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from alpaca_vault.server.commands.audit import resolve_user
from alpaca_vault.server.commands.credentials import open_vault, run

if TYPE_CHECKING:
    from alpaca_vault.guard.reconciler import Settlement

app = typer.Typer(help="Durable order intents: orders on record before they are sent.", no_args_is_help=True)


@app.command("reconcile")
def reconcile(
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Only this user's intents (name or id).")
    ] = None,
    grace: Annotated[
        int,
        typer.Option(
            "--grace",
            min=0,
            max=86_400,
            metavar="SECONDS",
            help="An intent Alpaca has no order for is recorded as never placed once it is this old "
            "(younger ones may still be in flight on a running server).",
        ),
    ] = 120,
) -> None:
    """Look every pending or unknown order intent up at Alpaca by client_order_id, once, and record what it
    finds. Never resubmits an order."""

    async def action() -> list[Settlement]:
        from alpaca_vault.audit import AuditLog, ChainKeys
        from alpaca_vault.audit.chain import CLI
        from alpaca_vault.broker.client import AlpacaClient
        from alpaca_vault.guard.order_intents import OrderIntents
        from alpaca_vault.guard.reconciler import Reconciler

        async with open_vault() as vault:
            uid = await resolve_user(vault, user)
            settings = vault.settings
            audit = AuditLog(vault.db, ChainKeys.from_keyring(vault.keyring))
            async with AlpacaClient(
                paper_url=settings.paper_url,
                live_url=settings.live_url,
                data_url=settings.data_url,
                timeout=settings.http_timeout,
            ) as broker:
                reconciler = Reconciler(
                    OrderIntents(vault.db, audit),
                    vault.service,
                    broker,
                    not_found_after=timedelta(seconds=grace),
                )
                try:
                    # Every user's intents: the tables' owner on PostgreSQL, like the other admin commands.
                    return await reconciler.run_once(uid, actor=CLI, owner=uid is None)
                finally:
                    audit.close()

    settlements = run(action)
    if not settlements:
        typer.echo("No open order intents: nothing to reconcile.")
        return
    for settlement in settlements:
        typer.echo(settlement.describe())
    settled = sum(s.outcome in ("found", "not_placed") for s in settlements)
    typer.echo(f"Settled {settled} of {len(settlements)} open intent(s).", err=True)
