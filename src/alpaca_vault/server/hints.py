"""Hints that lead somewhere: the command a person can actually type.

Lower rooms write a command as `` `alpaca-vault ...` ``. At the process edge we
rewrite it for whoever reads it here: when ``alpaca-vault`` is not on PATH (a
fresh clone runs ``.venv/bin/alpaca-vault``) the hint names the absolute path
of the running executable instead.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import sys
from pathlib import Path

COMMAND = "alpaca-vault"


def _running_executable() -> Path | None:
    """The console script this process was started as, if it was (not `python -m`, not pytest)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == COMMAND:
        return argv0.absolute()
    beside = Path(sys.executable).parent / COMMAND
    return beside if beside.exists() else None


@functools.cache
def program() -> str:
    """How to invoke this installation from a shell: ``alpaca-vault`` when PATH finds this very
    executable, else its absolute path (shell-quoted)."""
    running = _running_executable()
    if running is None:
        return COMMAND
    found = shutil.which(COMMAND)
    if found is not None and _same_file(Path(found), running):
        return COMMAND
    return shlex.quote(str(running))


def program_path() -> str:
    """The absolute path of the executable, for config files (MCP clients do not search PATH)."""
    running = _running_executable()
    if running is not None:
        return str(running)
    found = shutil.which(COMMAND)
    return str(Path(found).absolute()) if found else COMMAND


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def runnable(text: str) -> str:
    """Every `` `alpaca-vault ...` `` in ``text`` names the command as this shell can run it."""
    name = program()
    if name == COMMAND:
        return text
    return text.replace(f"`{COMMAND} ", f"`{name} ")
