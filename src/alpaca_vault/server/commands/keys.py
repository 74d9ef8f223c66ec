"""`alpaca-vault keys ...`: Master key management: generate and rotate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from alpaca_vault.server.commands.credentials import fail, open_vault, run

if TYPE_CHECKING:
    from alpaca_vault.vault.rotation import RotationResult

app = typer.Typer(help="Master key management: generate and rotate.", no_args_is_help=True)


@app.command("generate")
def generate() -> None:
    """Print a new master key (stdout) and how to put it in use (stderr)."""
    from alpaca_vault.server.hints import runnable
    from alpaca_vault.vault import KeyRing, generate_key

    key = generate_key()
    kid = KeyRing.from_string(key).primary_kid
    typer.echo(key)
    typer.echo(
        runnable(
            f"\nNew master key (kid {kid}). Keep it secret and back it up:"
            " without it the vault cannot be opened.\n"
            "To rotate to it: put it first in ALPACA_VAULT_ENCRYPTION_KEYS, followed by the current keys\n"
            "(or add it as the first line of DATA_DIR/master.key), run `alpaca-vault keys rotate`,\n"
            "then remove the old keys."
        ),
        err=True,
    )


@app.command("rotate")
def rotate(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=10_000, help="Credentials re-sealed per transaction.")
    ] = 500,
) -> None:
    """Re-seal every credential under the primary (first) key. Safe to interrupt and run again."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from alpaca_vault.vault.rotation import RotationProgress, count_pending
    from alpaca_vault.vault.rotation import rotate as rotate_all

    console = Console(stderr=True)

    async def action() -> RotationResult:
        async with open_vault() as vault:
            pending = await count_pending(vault.db, vault.keyring)
            with Progress(
                TextColumn(f"Re-sealing under key {vault.keyring.primary_kid}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task("rotate", total=pending)

                def on_batch(state: RotationProgress) -> None:
                    bar.update(task, completed=state.done)

                return await rotate_all(vault.db, vault.keyring, batch_size=batch_size, progress=on_batch)

    result = run(action)
    typer.echo(
        f"Rotated {result.credentials_rotated} credentials ({result.values_resealed} sealed values) "
        f"in {result.batches} batches; {result.already_current} were already under key {result.primary_kid}."
    )
    if result.failed:
        for line in result.failed:
            typer.echo(f"  could not rotate {line}", err=True)
        raise fail(
            f"{len(result.failed)} credentials could not be opened and were left as they are; "
            "fix the key ring and run `alpaca-vault keys rotate` again."
        )
    typer.echo("Every credential is now under the primary key; older keys can be removed from the ring.")
