"""`alpaca-vault serve`: run the MCP server over stdio (default) or Streamable HTTP."""

from __future__ import annotations

import enum
import sys
from typing import Annotated

import typer

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class Transport(enum.StrEnum):
    stdio = "stdio"
    http = "http"


def register(app: typer.Typer) -> None:
    app.command(name="serve")(serve)


def serve(
    transport: Annotated[Transport, typer.Option(help="stdio for desktop clients, http for many users.")] = (
        Transport.stdio
    ),
    host: Annotated[str, typer.Option(help="HTTP bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="HTTP port.")] = 8000,
    user: Annotated[
        str | None,
        typer.Option(help="User the stdio transport acts as (default: ALPACA_VAULT_USER or 'local')."),
    ] = None,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Also run the Alpaca simulator in-process, point the server at it and store a demo paper "
            "credential 'demo', using a separate vault in DATA_DIR/simulator. Everything works offline. "
            "Prints how to connect (with --transport http: a demo token; `make demo` is that).",
        ),
    ] = False,
    stateless: Annotated[
        bool,
        typer.Option("--stateless", help="HTTP without sessions, for several replicas behind a balancer."),
    ] = False,
) -> None:
    """Run the MCP server. stdio serves one local user; http serves many at http://HOST:PORT/mcp."""
    from alpaca_vault.server.logs import configure_logging
    from alpaca_vault.server.settings import SettingsError, load_settings

    try:
        overrides: dict[str, object] = {}
        if user is not None:
            overrides["user"] = user
        settings = load_settings(**overrides)
    except SettingsError as exc:
        typer.echo(f"alpaca-vault: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level)

    from alpaca_vault.server.runner import run_server

    try:
        run_server(
            settings, transport=transport.value, host=host, port=port, simulate=simulate, stateless=stateless
        )
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # start-up failure: say what, never a traceback with locals
        from alpaca_vault.server.runner import StartupError

        if isinstance(exc, StartupError):
            typer.echo(f"alpaca-vault: {exc}", err=True)
            raise typer.Exit(1) from None
        raise
    sys.exit(0)
