"""The garbage collector's pace in an ``alpaca-vault`` process: slow while it starts, none at exit.

Starting a command imports the MCP SDK, SQLAlchemy and pydantic: a few hundred thousand objects that
live as long as the process. At CPython's default thresholds the collector walks that growing heap
again and again while it is being built, and once more at interpreter shutdown, where it finds
nothing worth the walk: together about a third of a short command's CPU on the development VM, and
1-3 s between a client closing a stdio server's stdin and the server's exit (the SDK's client waits
2 s, then terminates the server). So the console script starts at a slower pace and freezes the heap
on its way out (``gc.freeze``: shutdown skips the frozen objects); a server returns to the default
pace once its runtime is open, with what start-up built frozen, so later full collections skip it.

Only ``main()`` of the console script calls :func:`start`; in any other process (tests calling the
CLI in-process, an embedding application) :func:`steady` and :func:`on_exit` change nothing.
"""

from __future__ import annotations

import gc

# About 70 times CPython's first threshold: a young collection every 50,000 new container objects.
START_UP_THRESHOLDS = (50_000, 20, 100)

_started = False  # start() ran in this process
_default_thresholds: tuple[int, int, int] | None = None  # set while the start-up pace holds


def start() -> None:
    """The start-up pace, for this process until :func:`steady` or its exit."""
    global _started, _default_thresholds
    if not _started:
        _started = True
        _default_thresholds = gc.get_threshold()
        gc.set_threshold(*START_UP_THRESHOLDS)


def steady() -> None:
    """Start-up is over (the server's runtime is open): its objects are frozen, the default pace is back."""
    global _default_thresholds
    if _default_thresholds is not None:
        gc.freeze()
        gc.set_threshold(*_default_thresholds)
        _default_thresholds = None


def on_exit() -> None:
    """The process is ending: shutdown need not walk the heap (cycles left now go with the process)."""
    if _started:
        gc.freeze()
