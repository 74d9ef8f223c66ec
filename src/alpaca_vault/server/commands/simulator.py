"""`alpaca-vault simulator`: run the Alpaca-compatible paper broker as its own process."""

from __future__ import annotations

import typer

_ACCOUNT_HELP = (
    "A paper account as KEY:SECRET[:CASH] (repeatable; cash defaults to 100000). "
    "Default: one demo account with generated keys, printed on stderr."
)
_ACCOUNTS_FILE_HELP = (
    "A file of paper accounts, KEY:SECRET[:CASH] per line, so keys stay out of the process list. "
    "Also read: $ALPACA_SIMULATOR_ACCOUNTS (same form, comma-separated)."
)
_STATE_HELP = (
    "Keep accounts, orders and positions in this JSON file across restarts (written owner-only). "
    "Default: state is in memory and gone when the process stops."
)
_FAULT_HELP = (
    'A fault as JSON, e.g. \'{"match": "POST /v2/orders", "status": 503, "rate": 0.1}\' (repeatable). '
    "Faults can also be set and cleared while running: POST/DELETE /_simulator/faults."
)


def register(app: typer.Typer) -> None:
    """Attach the `simulator` command to the root app."""

    @app.command("simulator")
    def simulator(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on (keep it on loopback)."),
        port: int = typer.Option(8765, min=0, max=65535, help="Port to listen on (0 picks a free one)."),
        account: list[str] = typer.Option([], "--account", help=_ACCOUNT_HELP),
        accounts_file: str | None = typer.Option(None, "--accounts-file", help=_ACCOUNTS_FILE_HELP),
        state_file: str | None = typer.Option(None, "--state-file", help=_STATE_HELP),
        seed: int = typer.Option(7, help="Seed of the deterministic price path."),
        clock: str = typer.Option(
            "always_open",
            help="Market clock: always_open (orders fill at any hour), or exchange_hours (NYSE sessions, "
            "holidays and early closes).",
        ),
        clock_says_open: bool = typer.Option(
            False,
            "--clock-says-open",
            help="With always_open, make GET /v2/clock report the market open at any hour "
            "(by default it reports the real session).",
        ),
        fault: list[str] = typer.Option([], "--fault", help=_FAULT_HELP),
    ) -> None:
        """Run an Alpaca-compatible paper broker (trading API v2 + market data) for tests and demos."""
        import json
        import os
        import socket
        import sys
        from pathlib import Path

        import uvicorn

        from alpaca_vault.simulator import AccountSpec, SimulatorConfig, create_app
        from alpaca_vault.simulator.books import new_key_pair
        from alpaca_vault.simulator.config import ACCOUNTS_ENV, parse_accounts
        from alpaca_vault.simulator.faults import parse_fault

        if clock not in ("always_open", "exchange_hours"):
            raise typer.BadParameter("use always_open or exchange_hours", param_hint="--clock")
        accounts: list[AccountSpec] = []
        sources = [("--account", text) for text in account]
        if accounts_file:
            try:
                sources.append(("--accounts-file", Path(accounts_file).read_text(encoding="utf-8")))
            except OSError as error:
                raise typer.BadParameter(
                    f"cannot read it: {error.strerror}", param_hint="--accounts-file"
                ) from None
        if os.environ.get(ACCOUNTS_ENV):
            sources.append((f"${ACCOUNTS_ENV}", os.environ[ACCOUNTS_ENV]))
        for hint, text in sources:
            try:
                accounts.extend(parse_accounts(text))
            except ValueError as error:
                raise typer.BadParameter(str(error), param_hint=hint) from None
        faults = []
        for text in fault:
            try:
                faults.append(parse_fault(json.loads(text)))
            except (ValueError, TypeError) as error:
                raise typer.BadParameter(str(error), param_hint="--fault") from None
        demo = not accounts and not (state_file and Path(state_file).exists())
        if demo:
            key, secret = new_key_pair()
            accounts.append(AccountSpec(api_key=key, secret_key=secret))
        config = SimulatorConfig(
            accounts=accounts,
            seed=seed,
            clock=clock,  # type: ignore[arg-type]
            faults=faults,
            report_always_open=clock_says_open,
            state_file=state_file,
        )
        try:
            sock = socket.socket(
                socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
            )
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(2048)  # listening before the banner: early clients queue instead of being refused
        except OSError as error:
            print(
                f"alpaca-vault: cannot listen on {host}:{port} ({error.strerror}); choose another with --port.",
                file=sys.stderr,
            )
            raise typer.Exit(1) from None
        port = sock.getsockname()[1]
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        print(f"Alpaca simulator on {url} (trading and market data base URL)", file=sys.stderr)
        if host not in ("127.0.0.1", "::1", "localhost"):
            print(
                "  warning: not on loopback; the /_simulator admin routes have no authentication",
                file=sys.stderr,
            )
        if demo:
            # Demo keys are throwaway paper keys for this process only; stderr, never stdout.
            print(f"  demo paper account  APCA-API-KEY-ID={accounts[0].api_key}", file=sys.stderr)
            print(f"                      APCA-API-SECRET-KEY={accounts[0].secret_key}", file=sys.stderr)
        else:
            print(
                f"  {len(accounts)} account{'' if len(accounts) == 1 else 's'} from --account, --accounts-file or "
                f"${ACCOUNTS_ENV}",
                file=sys.stderr,
            )
        if state_file:
            print(f"  state kept in {state_file}", file=sys.stderr)
        print(
            f"  point alpaca-vault at it: ALPACA_VAULT_PAPER_URL={url} ALPACA_VAULT_DATA_URL={url}",
            file=sys.stderr,
        )
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(config), log_level="warning", access_log=False, lifespan="off", backlog=2048
            )
        )
        server.run(sockets=[sock])
