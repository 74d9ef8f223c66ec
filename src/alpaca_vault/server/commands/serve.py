"""`alpaca-vault serve`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the `serve` command to the root app (not implemented yet)."""
