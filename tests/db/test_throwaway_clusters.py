"""The test suite's sweep of throwaway PostgreSQL clusters that killed runs left on /dev/shm.

The attack it must not fall for: another run's live cluster, whose postmaster is in another container
sharing this /dev/shm (a pid this run cannot see), taken for a dead one and deleted under it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.fixtures.postgres import CLUSTER_PREFIX, _delete_stale_clusters

_LONG_AGO = time.time() - 3600
# A pid no process has here (above the largest pid_max Linux allows): a postmaster in another pid namespace.
_UNSEEN_PID = 4_194_304 + 17


def _left_cluster(parent: Path, name: str, *, postmaster_pid: int | None, claim_file: bool = True) -> Path:
    root = parent / f"{CLUSTER_PREFIX}{name}"
    (root / "pgdata").mkdir(parents=True)
    if claim_file:  # made with the directory, as claimed_cluster_dir makes it
        (root / "in-use.lock").touch()
    if postmaster_pid is not None:
        (root / "pgdata" / "postmaster.pid").write_text(f"{postmaster_pid}\n/some/dir\n")
    os.utime(root, (_LONG_AGO, _LONG_AGO))
    return root


def _claim_in_another_process(root: Path) -> subprocess.Popen[str]:
    """Hold ``root``'s claim from a process of its own, as the run that made it does; returns once held."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys\n"
            f"claim = open({str(root / 'in-use.lock')!r}, 'w')\n"
            "fcntl.flock(claim, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_a_claimed_cluster_whose_postmaster_this_run_cannot_see_is_kept(tmp_path: Path) -> None:
    live_elsewhere = _left_cluster(tmp_path, "elsewhere", postmaster_pid=_UNSEEN_PID)
    holder = _claim_in_another_process(live_elsewhere)
    try:
        _delete_stale_clusters(tmp_path)
        assert (live_elsewhere / "pgdata").is_dir()
    finally:
        holder.communicate("")
    # Its run has ended (the claim went with it): now it is stale, and goes.
    _delete_stale_clusters(tmp_path)
    assert not live_elsewhere.exists()


def test_stale_clusters_go_and_live_or_fresh_ones_stay(tmp_path: Path) -> None:
    dead = _left_cluster(tmp_path, "dead", postmaster_pid=_UNSEEN_PID)
    released = _left_cluster(tmp_path, "released", postmaster_pid=None)  # a claim nobody holds: its run ended
    running_here = _left_cluster(tmp_path, "here", postmaster_pid=os.getpid(), claim_file=False)  # pre-claims
    dead_before_claims = _left_cluster(tmp_path, "old", postmaster_pid=_UNSEEN_PID, claim_file=False)
    fresh = tmp_path / f"{CLUSTER_PREFIX}fresh"  # still in initdb: no postmaster.pid yet, no claim needed
    fresh.mkdir()
    unrelated = tmp_path / "someone-elses-dir"
    unrelated.mkdir()
    os.utime(unrelated, (_LONG_AGO, _LONG_AGO))

    _delete_stale_clusters(tmp_path)

    assert not dead.exists() and not released.exists() and not dead_before_claims.exists()
    assert running_here.is_dir() and fresh.is_dir() and unrelated.is_dir()
