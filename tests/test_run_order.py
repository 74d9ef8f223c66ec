"""The suite's run-first list names files that exist (a renamed file would quietly lose its place)."""

from pathlib import Path

from tests.conftest import RUN_FIRST


def test_every_run_first_file_exists() -> None:
    root = Path(__file__).resolve().parent.parent
    assert [path for path in RUN_FIRST if not (root / path).is_file()] == []
