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
        _leave_after_ctrl_c()
    except Exception as exc:  # start-up failure: say what, never a traceback with locals
        from alpaca_vault.server.runner import StartupError

        if isinstance(exc, StartupError):
            typer.echo(f"alpaca-vault: {exc}", err=True)
            raise typer.Exit(1) from None
        raise
    sys.exit(0)


def _leave_after_ctrl_c() -> None:
    """Exit 0 now, without waiting for threads. The server closed what it had opened on its way out; but a
    Ctrl-C that lands while the vault is being opened (its first start migrates it) can leave a database
    connection whose worker thread (aiosqlite's, not a daemon) waits for work for ever, and the
    interpreter would wait for that thread at exit: the process never ended. Nothing is left to write
    (SQLite commits are durable as they are made), so flush what was said and leave."""
    import contextlib
    import logging
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)
