"""`alpaca-vault simulator`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the `simulator` command to the root app (not implemented yet)."""
