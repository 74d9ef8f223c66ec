"""WAL checkpoints on a thread of their own, for the connections that commit on the event loop's thread.

SQLite copies the write-ahead log back into the database file (a checkpoint) from inside the commit
that pushes the log over ``wal_autocheckpoint`` pages (1000 by default), and with ``synchronous =
NORMAL`` that checkpoint is where the fsyncs happen: about 25-40 ms on this project's test machine.
The inline connections (``Database.read_inline``/``write_inline``, ``db/inline.py``) commit on the
event loop's thread, so one audit append in a few hundred stopped every other request for that long.

So those connections set ``wal_autocheckpoint = 0`` and report their commits here; every
``CHECKPOINT_EVERY_COMMITS`` commits a daemon thread runs ``PRAGMA wal_checkpoint(PASSIVE)`` on a
connection of its own (it never blocks readers or writers; what it cannot copy yet, the next one
will). The aiosqlite connections keep SQLite's automatic checkpoints: they commit on worker threads.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger("alpaca_vault.db")

# An audit append writes about three pages to the log: a checkpoint every ~750 pages of appends,
# under SQLite's own default of 1000.
CHECKPOINT_EVERY_COMMITS = 250


class WalCheckpointer:
    """Checkpoints one SQLite file's log on a background thread, once enough inline commits were made."""

    def __init__(self, path: Path, every_commits: int = CHECKPOINT_EVERY_COMMITS) -> None:
        self._path = path
        self._every = every_commits
        self._commits = 0
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        # What the passes did (tests and benches read them): passes that copied frames back, and the last
        # pass's (busy, frames in the log, frames copied) as SQLite reports them.
        self.checkpoints = 0
        self.last_result: tuple[int, int, int] | None = None

    def committed(self) -> None:
        """One inline commit was made (cheap: a counter; the thread starts on the first checkpoint due).

        Never raises: the commit it reports has happened, and its caller must hear that it did."""
        self._commits += 1  # a lost increment between threads only delays a checkpoint a little
        if self._commits < self._every:
            return
        self._commits = 0
        try:
            with self._lock:
                if self._worker is None:
                    self._worker = _Worker(self)
                worker = self._worker
            worker.wake.set()
        except (
            Exception
        ) as exc:  # no thread to be had (a limit, interpreter shutdown): SQLite at close does it
            logger.debug("WAL checkpoint thread not started: %s", exc)

    def close(self) -> None:
        """Stop the thread, after the pass it may be in (one checkpoint at most: tens of ms). A later commit
        starts a new one: the database's connections reopen after ``Database.dispose`` too."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop.set()
            worker.wake.set()
            worker.thread.join(timeout=10)

    def _pass(self, connection: sqlite3.Connection) -> None:
        try:
            busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # busy or gone: the next pass (or SQLite at close) catches up
            logger.debug("WAL checkpoint skipped: %s", exc)
            return
        self.last_result = (busy, frames, copied)
        if copied > 0:
            self.checkpoints += 1


class _Worker:
    """One checkpoint thread with its own wake-up and stop signals (so a stopped one never runs on)."""

    def __init__(self, owner: WalCheckpointer) -> None:
        self.wake = threading.Event()
        self.stop = threading.Event()
        self._owner = owner
        self.thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        owner = self._owner
        try:
            connection = sqlite3.connect(
                f"{owner._path.resolve().as_uri()}?mode=rw",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            logger.warning("WAL checkpoints cannot open the database file: %s", type(exc).__name__)
            with owner._lock:
                if owner._worker is self:
                    owner._worker = None  # the next checkpoint due tries again
            return
        try:
            connection.execute("PRAGMA busy_timeout = 1000")
            while True:
                self.wake.wait()
                self.wake.clear()
                if self.stop.is_set():
                    return
                owner._pass(connection)
        finally:
            connection.close()
