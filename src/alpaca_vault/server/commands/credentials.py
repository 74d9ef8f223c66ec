"""`alpaca-vault credentials ...`: Store, list, validate and remove Alpaca credentials."""

from __future__ import annotations

import typer

app = typer.Typer(help="Store, list, validate and remove Alpaca credentials.", no_args_is_help=True)
