"""The ``alpaca-vault`` command line.

Each command group lives in its own module under ``commands/`` and imports
its heavy dependencies inside the command function, so ``alpaca-vault serve``
starts fast and ``--help`` never touches the database.
"""

from __future__ import annotations

import typer

from alpaca_vault.server.commands import (
    audit,
    console,
    credentials,
    db,
    keys,
    orders,
    policy,
    serve,
    simulator,
    tokens,
    users,
)

app = typer.Typer(
    name="alpaca-vault",
    help="An MCP server that lets AI agents trade through Alpaca without ever seeing a key.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
serve.register(app)
console.register(app)
simulator.register(app)
app.add_typer(credentials.app, name="credentials")
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.add_typer(orders.app, name="orders")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
