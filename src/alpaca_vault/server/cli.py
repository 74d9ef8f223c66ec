"""The ``alpaca-vault`` command line.

Each command group lives in its own module under ``commands/`` and imports
its heavy dependencies inside the command function, so ``alpaca-vault serve``
starts fast and ``--help`` never touches the database.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
import typer.core

from alpaca_vault import __version__
from alpaca_vault.server import collector
from alpaca_vault.server.commands import (
    audit,
    console,
    credentials,
    db,
    doctor,
    keys,
    orders,
    policy,
    serve,
    simulator,
    tokens,
    users,
)


def _plain_help_markers() -> None:
    """Help that shows `--simulate`, not `--simulate <bool>`, and `NAME`, not `{NAME}`.

    This typer prints a type for every option, flags included, and wraps required arguments in
    braces in the usage line; neither means anything to a reader, so both are left out.
    """
    option_type = typer.core.TyperOption.display_type_rich

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else option_type(self, ctx)

    def usage_display_name(self: typer.core.TyperArgument) -> str:
        name = self.display_name_raw.upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
    typer.core.TyperArgument._usage_display_name = usage_display_name  # type: ignore[method-assign]


_plain_help_markers()


def _one_line_usage_errors() -> None:
    """A usage error (a missing option, a bad value, an unknown command) as one line on stderr starting
    with ``alpaca-vault:``, like every other error of this CLI (README), instead of typer's boxed panel.

    typer prints them through ``rich_utils.rich_format_error``, looked up when the error happens, so
    replacing that function is enough. The exit code (2) is typer's, unchanged.
    """
    from typer import rich_utils

    original = rich_utils.rich_format_error

    def one_line(error: Any) -> None:
        if error.__class__.__name__ == "NoArgsIsHelpError":  # no arguments: the help was shown
            original(error)
            return
        ctx = getattr(error, "ctx", None)
        hint = f" See `{ctx.command_path} --help`." if ctx is not None else ""
        message = " ".join(error.format_message().split())  # one line, whatever the message's wrapping
        typer.echo(f"alpaca-vault: {message}{hint}", err=True)

    rich_utils.rich_format_error = one_line


_one_line_usage_errors()

app = typer.Typer(
    name="alpaca-vault",
    help="An MCP server that lets AI agents trade through Alpaca without ever seeing a key.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"alpaca-vault {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """An MCP server that lets AI agents trade through Alpaca without ever seeing a key."""


serve.register(app)
console.register(app)
simulator.register(app)
doctor.register(app)
app.add_typer(credentials.app, name="credentials")
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.add_typer(orders.app, name="orders")


def main() -> None:
    collector.start()
    try:
        app()
    finally:
        collector.on_exit()


if __name__ == "__main__":
    main()
