"""`alpaca-vault tokens ...`: Bearer tokens for the HTTP transport."""

from __future__ import annotations

import typer

app = typer.Typer(help="Bearer tokens for the HTTP transport.", no_args_is_help=True)
