"""Hints that lead somewhere: the command a person can actually type, and CLI words in CLI output.

Lower rooms write their next steps as `` `alpaca-vault ...` `` and name MCP
tools (``update_credential``) because an agent reads most of them. At the
process edge we rewrite them for whoever reads them here: when ``alpaca-vault``
is not on PATH (a fresh clone runs ``.venv/bin/alpaca-vault``) the hint names
the absolute path of the running executable, and a terminal user is pointed at
the CLI command rather than at a tool they cannot call.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

COMMAND = "alpaca-vault"

# Tool names an error may mention -> what a terminal user runs instead (NAME stays a placeholder).
_TOOL_TO_CLI = {
    "update_credential": f"`{COMMAND} credentials update NAME`",
    "list_credentials": f"`{COMMAND} credentials list`",
    "validate_credential": f"`{COMMAND} credentials validate NAME`",
    "delete_credential": f"`{COMMAND} credentials remove NAME`",
    "store_credential": f"`{COMMAND} credentials add NAME --environment paper`",
}
_TOOL_NAME = re.compile(r"(?<![\w`-])(" + "|".join(_TOOL_TO_CLI) + r")(?![\w`])")
_SAY_WHICH = "Say which one with the credential argument."
# "Credential 'x' is deactivated. Activate it with update_credential first." names the credential.
_INACTIVE = re.compile(
    r"Credential '(?P<name>[^']+)' is deactivated\. Activate it with update_credential first\."
)


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


def for_terminal(text: str) -> str:
    """``text`` as a CLI user should read it: tool names become the CLI commands, runnable here."""
    text = _INACTIVE.sub(
        lambda m: (
            f"Credential '{m['name']}' is deactivated. Activate it with "
            f"`{COMMAND} credentials update {shlex.quote(m['name'])} --activate` first."
        ),
        text,
    )
    text = _TOOL_NAME.sub(lambda m: _TOOL_TO_CLI[m.group(1)], text)
    text = text.replace(_SAY_WHICH, "Name the credential.")
    return runnable(text)
