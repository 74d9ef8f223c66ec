"""`alpaca-vault db ...`: Database schema management."""

from __future__ import annotations

import typer

app = typer.Typer(help="Database schema management.", no_args_is_help=True)
