"""The ``alpaca-vault`` command line.

Each command group lives in its own module under ``commands/`` and imports
its heavy dependencies inside the command function, so ``alpaca-vault serve``
starts fast and ``--help`` never touches the database.
"""

from __future__ import annotations

import sys
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
        code = _run()
    finally:
        collector.on_exit()
    sys.exit(code)


def _run() -> int:
    """The command's exit code. A usage error (a missing option, a bad value, an unknown command) is one
    line on stderr starting with ``alpaca-vault:``, like every other error of this CLI (README), instead
    of typer's boxed panel; exit code 2 as before. Done here, with typer told to raise instead of print
    (``standalone_mode=False``), so no start-up pays for typer's rich error formatting."""
    try:
        result = app(standalone_mode=False)
    except typer.Abort:
        typer.echo("alpaca-vault: aborted", err=True)
        return 1
    except Exception as error:
        if not (hasattr(error, "format_message") and hasattr(error, "exit_code")):
            raise  # not one of click's usage errors
        code: int = error.exit_code
        if type(error).__name__ == "NoArgsIsHelpError":
            return code  # no arguments: typer has shown the help
        ctx = getattr(error, "ctx", None)
        hint = f" See `{ctx.command_path} --help`." if ctx is not None else ""
        message = " ".join(error.format_message().split())  # one line, whatever the message's wrapping
        typer.echo(f"alpaca-vault: {message}{hint}", err=True)
        return code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    main()
