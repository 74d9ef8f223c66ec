"""The collector's pace in an alpaca-vault process (server/collector.py): slow while starting, none at exit.

A process's pace is observable only from inside it: the first test asks a real console-script run,
the others drive the module in this process and put the collector back as they found it.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from alpaca_vault.server import collector

# What the console script's process looks like just before the interpreter shuts down.
AT_SHUTDOWN = """
import atexit, gc, sys
atexit.register(lambda: print(gc.get_threshold(), gc.get_freeze_count() > 0))
sys.argv = ["alpaca-vault", "--version"]
from alpaca_vault.server.cli import main
main()
"""


def test_the_console_script_starts_at_the_start_up_pace_and_freezes_its_heap_on_the_way_out() -> None:
    result = subprocess.run([sys.executable, "-c", AT_SHUTDOWN], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    version, at_shutdown = result.stdout.splitlines()
    assert version.startswith("alpaca-vault ")
    assert at_shutdown == f"{collector.START_UP_THRESHOLDS} True"


@pytest.fixture
def own_collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's collector as the test found it, whatever the test did to it."""
    thresholds = gc.get_threshold()
    monkeypatch.setattr(collector, "_started", False)
    monkeypatch.setattr(collector, "_default_thresholds", None)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_outside_the_console_script_the_pace_is_left_alone(own_collector: None) -> None:
    before = gc.get_threshold(), gc.get_freeze_count()
    collector.steady()
    collector.on_exit()
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


async def test_a_server_returns_to_the_default_pace_once_its_runtime_is_open(
    own_collector: None, tmp_path: Path
) -> None:
    from alpaca_vault.server.app import open_runtime
    from alpaca_vault.server.settings import Settings

    default = gc.get_threshold()
    collector.start()
    assert gc.get_threshold() == collector.START_UP_THRESHOLDS
    async with open_runtime(Settings(data_dir=tmp_path)) as runtime:
        await runtime.ready()
        with anyio.fail_after(30):  # the warm-up task ends just after the runtime it opened
            while gc.get_threshold() != default:
                await anyio.sleep(0.01)
        assert gc.get_freeze_count() > 0  # what start-up built is frozen
