"""`alpaca-vault console`: open the web console on loopback and print a one-time sign-in link."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Annotated

import typer

SIGN_IN_MINUTES = 10


def register(app: typer.Typer) -> None:
    app.command(name="console")(console)


def console(
    user: Annotated[
        str | None,
        typer.Option(help="Whose console (default: ALPACA_VAULT_USER or 'local', created if missing)."),
    ] = None,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Loopback port to serve on (0 = a free one).")
    ] = 0,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="--no-serve: only print a link for an HTTP server already running on the same database "
            "(give its address with --url).",
        ),
    ] = True,
    url: Annotated[
        str | None,
        typer.Option(help="With --no-serve: the running server's base URL, e.g. http://127.0.0.1:8000."),
    ] = None,
) -> None:
    """Serve the web console on 127.0.0.1 and print a one-time sign-in link (valid 10 minutes, once).

    The console manages credentials (add and replace keys on the key entry page, deactivate, delete)
    and API tokens. The link is printed on stdout; logs go to stderr. Ctrl-C stops the server.
    """
    from alpaca_vault.server.logs import configure_logging
    from alpaca_vault.server.settings import SettingsError, load_settings

    try:
        settings = load_settings(**({"user": user} if user is not None else {}))
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level)
    if not serve and not url and not settings.public_url:
        typer.echo("alpaca-vault: with --no-serve, give the running server's address with --url.", err=True)
        raise typer.Exit(2)
    if url is not None and not _is_web_address(url):
        # The link is for a person's browser: anything else would print a link that leads nowhere.
        typer.echo(
            "alpaca-vault: --url must be the server's http:// or https:// address, "
            "e.g. http://127.0.0.1:8000 or https://vault.example.com.",
            err=True,
        )
        raise typer.Exit(2)

    if not serve:
        base = (settings.public_url or url or "").rstrip("/")
        secret = _issue(settings, explicit_user=user is not None)
        typer.echo(f"{base}/console/sign-in/{secret}")
        typer.echo(
            f"One-time sign-in link for user '{settings.user}', valid {SIGN_IN_MINUTES} minutes.", err=True
        )
        return

    import uvicorn

    from alpaca_vault.server.runner import build_http_app, http_server_options
    from alpaca_vault.simulator.runner import listening_socket

    sock = listening_socket("127.0.0.1", port, backlog=64)  # loopback only: the console is for this machine
    bound = sock.getsockname()[1]
    app = build_http_app(settings, host="127.0.0.1", port=bound)
    secret = _issue(settings, explicit_user=user is not None)
    base = settings.public_url or f"http://127.0.0.1:{bound}"
    typer.echo(f"{base}/console/sign-in/{secret}")
    sys.stdout.flush()
    typer.echo(
        f"Console for user '{settings.user}' at http://127.0.0.1:{bound}/console/ (MCP at /mcp). Open the link above "
        f"within {SIGN_IN_MINUTES} minutes; it works once. Ctrl-C stops the server.",
        err=True,
    )
    config = uvicorn.Config(
        app, log_config=None, log_level=settings.log_level.lower(), **http_server_options(settings)
    )
    uvicorn.Server(config).run(sockets=[sock])


def _issue(settings: object, *, explicit_user: bool) -> str:
    """Mint a console sign-in link for the settings' user; returns its secret part (shown once)."""
    from alpaca_vault.console.links import LinkStore
    from alpaca_vault.db.engine import Database
    from alpaca_vault.db.migrate import ensure_schema
    from alpaca_vault.server.settings import Settings
    from alpaca_vault.vault.credentials import CredentialService
    from alpaca_vault.vault.keyring import KeyRing

    assert isinstance(settings, Settings)

    async def issue() -> str:
        from alpaca_vault.server.hardening import may_create_key_file

        database = Database.create(settings.effective_database_url)
        try:
            if settings.is_embedded_sqlite:
                await ensure_schema(database)
            keyring = KeyRing.load(
                settings.encryption_keys.get_secret_value() if settings.encryption_keys else None,
                settings.data_dir,
                create_key_file=may_create_key_file(settings),
            )
            vault = CredentialService(database, keyring)
            found = await vault.find_user(settings.user)
            if found is None and explicit_user:
                typer.echo(
                    f"alpaca-vault: no user '{settings.user}'; "
                    f"create it with `alpaca-vault users add {settings.user}`.",
                    err=True,
                )
                raise typer.Exit(1)
            owner = found or await vault.ensure_user(settings.user)  # the implicit local user, as stdio does
            if not owner.is_active:
                typer.echo(f"alpaca-vault: user '{settings.user}' is inactive.", err=True)
                raise typer.Exit(1)
            issued = await LinkStore(database).issue(
                owner.id, "console_sign_in", lifetime=timedelta(minutes=SIGN_IN_MINUTES), bound_to=owner.name
            )
            return issued.secret
        finally:
            await database.dispose()

    return asyncio.run(issue())


def _is_web_address(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment
    )
