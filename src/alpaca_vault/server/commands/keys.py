"""`alpaca-vault keys ...`: master keys (generate, rotate = re-wrap data keys), data keys, migration."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from alpaca_vault.server.commands.credentials import fail, open_vault, run

if TYPE_CHECKING:
    from rich.progress import TaskID

    from alpaca_vault.server.commands.credentials import VaultContext
    from alpaca_vault.vault.rotation import (
        DamagedRow,
        DataKeyRotationResult,
        MigrationResult,
        RotationProgress,
        RotationResult,
    )

app = typer.Typer(
    help="Key management: generate and rotate master keys, rotate data keys, migrate old-form values.",
    no_args_is_help=True,
)


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
            "(or, where the keys live in DATA_DIR/master.key, add it there as the first line), then run\n"
            "`alpaca-vault keys rotate`. Keep the old keys after it: they verify the audit events signed\n"
            "under them."
        ),
        err=True,
    )


BatchSize = Annotated[
    int, typer.Option("--batch-size", min=1, max=10_000, help="Rows changed per transaction.")
]


@contextmanager
def _progress_bars() -> Iterator[Callable[[RotationProgress], None]]:
    """One progress bar per phase (stderr), created when the phase reports first."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    labels = {
        "migrate": "Moving old-form values to data keys",
        "rewrap": "Re-wrapping data keys under the primary",
        "new data keys": "Making new data keys",
        "reseal": "Re-sealing values under new data keys",
    }
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def on_batch(state: RotationProgress) -> None:
            if state.phase not in tasks:
                tasks[state.phase] = bar.add_task(labels.get(state.phase, state.phase), total=state.total)
            bar.update(tasks[state.phase], completed=state.done)

        yield on_batch


def _report_damaged(damaged: list[DamagedRow]) -> None:
    """Rows no key can open: skipped, named, each with the commands that fix it (#10 item 8)."""
    import shlex

    from alpaca_vault.server.hints import program

    if not damaged:
        return
    cmd = program()
    typer.echo(
        f"Skipped {len(damaged)} damaged row(s): they are not sealed values at all, so no key opens them "
        "and none of them needs an old master key:",
        err=True,
    )
    for row in damaged:
        user = shlex.quote(row.user_name or str(row.user_id))
        if row.what == "data key":
            typer.echo(
                f"  the data key of user {user} ({row.problem}): every credential under it is damaged too. "
                f"Fix: `{cmd} credentials list --user {user}` marks them; remove each and add it again "
                "(a new data key is made on the next add).",
                err=True,
            )
        else:
            name = shlex.quote(row.credential or "NAME")
            typer.echo(
                f"  credential {name} of user {user}: {row.problem}. Fix: `{cmd} credentials remove {name} "
                f"--user {user}`, then `{cmd} credentials add {name} --environment paper|live --user {user}`.",
                err=True,
            )


def _report_failures(failed: list[str], command: str) -> None:
    if failed:
        for line in failed:
            typer.echo(f"  could not rotate {line}", err=True)
        raise fail(
            f"{len(failed)} values could not be opened and were left as they are; they still need the master "
            f"key named above, so keep it in the ring: fix the key ring and run `{command}` again."
        )


@app.command("rotate")
def rotate(
    batch_size: BatchSize = 500,
    data_keys: Annotated[
        bool,
        typer.Option(
            "--data-keys",
            help="Also give users new data keys and re-seal their values under them (when a data key may "
            "have leaked); the old data keys are destroyed.",
        ),
    ] = False,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="With --data-keys: only this user's data key.")
    ] = None,
) -> None:
    """Re-wrap every user's data key under the primary (first) master key. Safe to interrupt and run again.

    Values still sealed directly under a master key (the old form) are moved to data keys first.
    With --data-keys, users' data keys are replaced too.
    """
    from alpaca_vault.vault import rotation

    if user is not None and not data_keys:
        raise fail("--user works with --data-keys (a master-key rotation always covers every user).", 2)

    async def action() -> tuple[RotationResult, DataKeyRotationResult | None, list[DamagedRow]]:
        async with open_vault() as vault:
            outcome = await rotate_all(vault)
            skipped = outcome[0].damaged + (outcome[1].damaged if outcome[1] is not None else [])
            named = await rotation.name_damaged_users(vault.db, skipped)
            from alpaca_vault.db.models import SYSTEM_USER_ID
            from alpaca_vault.server.commands.audit import record_cli_event

            # Rotation belongs to no user: it is chained under the system id (#13).
            done, rotated = outcome
            await record_cli_event(
                vault,
                SYSTEM_USER_ID,
                "key.rotate",
                details={
                    "kid": done.rewrap.primary_kid,
                    "resealed": done.rewrap.data_keys_rewrapped,
                    "count": rotated.users_rotated if rotated is not None else 0,
                },
            )
            return outcome[0], outcome[1], named

    async def rotate_all(vault: VaultContext) -> tuple[RotationResult, DataKeyRotationResult | None]:
        with _progress_bars() as on_batch:
            if not data_keys:
                return await rotation.rotate(
                    vault.db, vault.keyring, batch_size=batch_size, progress=on_batch
                ), None
            user_id = None
            if user is not None:
                found = await vault.service.find_user(user)
                if found is None:
                    raise fail(f"No user named '{user}'. `alpaca-vault users list` shows them.")
                user_id = found.id
            rotated = await rotation.rotate_data_keys(
                vault.db, vault.keyring, user_id=user_id, batch_size=batch_size, progress=on_batch
            )
            # New data keys are wrapped under the primary already; older ones of other users may not be.
            rewrapped = await rotation.rewrap(
                vault.db, vault.keyring, batch_size=batch_size, progress=on_batch
            )
            return rotation.RotationResult(rotated.migration, rewrapped), rotated

    result, rotated, damaged = run(action)
    migration, rewrapped = result.migration, result.rewrap
    if migration.credentials_migrated or migration.failed:
        typer.echo(f"Moved {migration.credentials_migrated} credentials from the old form to data keys.")
    if rotated is not None:
        typer.echo(
            f"Rotated the data keys of {rotated.users_rotated} users: re-sealed {rotated.credentials_resealed} "
            f"credentials, destroyed {rotated.data_keys_destroyed} old data keys."
        )
    typer.echo(
        f"Re-wrapped {rewrapped.data_keys_rewrapped} data keys in {rewrapped.batches} batches; "
        f"{rewrapped.already_current} were already under key {rewrapped.primary_kid}."
    )
    failed = result.failed + (rotated.failed if rotated is not None else [])
    _report_damaged(damaged)
    _report_failures(failed, "alpaca-vault keys rotate" + (" --data-keys" if data_keys else ""))
    if damaged:
        typer.echo(
            f"Every other data key is now under the primary key (the {len(damaged)} damaged row(s) need no "
            "master key, but stay unusable until fixed as shown)."
        )
    else:
        typer.echo("Every data key is now under the primary key.")
    from alpaca_vault.server.hints import runnable

    # #13: the audit trail's events are signed under keys derived from the ring; rotation leaves them as they are.
    typer.echo(
        runnable(
            "Keep the older master keys in the ring, after the primary: they now only verify the audit events "
            "signed under them (new values and events use the primary). Without one, `alpaca-vault audit verify` "
            "cannot check the events signed under it."
        )
    )


@app.command("migrate")
def migrate(batch_size: BatchSize = 500) -> None:
    """Move values still sealed directly under a master key (the old form) to their users' data keys.

    Safe to interrupt and run again; both forms open meanwhile. `keys rotate` does this too.
    """
    from alpaca_vault.vault.rotation import migrate_old_form, name_damaged_users, old_form_report

    async def action() -> tuple[MigrationResult, int, list[DamagedRow]]:
        async with open_vault() as vault:
            with _progress_bars() as on_batch:
                moved = await migrate_old_form(
                    vault.db, vault.keyring, batch_size=batch_size, progress=on_batch
                )
            named = await name_damaged_users(vault.db, moved.damaged)
            return moved, (await old_form_report(vault.db)).credentials, named

    moved, left, damaged = run(action)
    _report_damaged(damaged)
    typer.echo(
        f"Moved {moved.credentials_migrated} credentials ({moved.values_resealed} sealed values) "
        f"to data keys in {moved.batches} batches; {left} left in the old form."
    )
    _report_failures(moved.failed, "alpaca-vault keys migrate")
