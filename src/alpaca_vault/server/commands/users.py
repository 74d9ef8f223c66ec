"""`alpaca-vault users ...`: Users of a multi-user (HTTP) deployment."""

from __future__ import annotations

import typer

app = typer.Typer(help="Users of a multi-user (HTTP) deployment.", no_args_is_help=True)
