"""`alpaca-vault keys ...`: Master key management: generate and rotate."""

from __future__ import annotations

import typer

app = typer.Typer(help="Master key management: generate and rotate.", no_args_is_help=True)
