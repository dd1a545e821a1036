"""Which of the servers sharing one store runs the loop: the one holding the loop lock.

Several ``steward serve`` processes (replicas behind a proxy, or ``uvicorn --workers N``) share one
store; each serves requests, but the loop (monitors, SLOs, alerts, playbooks) must run on one at a
time, or alerts fire twice and playbooks act twice. The lock is the store's own:

- on PostgreSQL, a session-level advisory lock (``pg_try_advisory_lock``) held on a connection of its
  own. When its holder dies, or the server restarts, the connection closes and the lock is free;
- on SQLite (one machine), an exclusive ``flock`` on ``.steward/loop.lock``, which the kernel
  releases when its holder dies.

Nobody waits on it: every interval each scheduler asks ``acquire()``, which returns at once, so a
standby takes over within one loop interval of the leader's death.

Example::

    lock = LoopLock(steward)
    if lock.acquire():
        tick(steward, events)
    lock.release()
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, text

from steward.workspace import Workspace

__all__ = ["LOOP_LOCK_KEY", "LoopLock"]

logger = logging.getLogger(__name__)

#: The advisory lock key of the loop on PostgreSQL ("steward loop" as a number; any fixed bigint).
LOOP_LOCK_KEY = 0x5354_4C4F_4F50


class LoopLock:
    """The loop lock of one process; ``acquire`` takes it when free and keeps it while alive.

    The store is opened at the first ``acquire``, not here, so a scheduler starts even while the
    store is down (it asks again every interval)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.lock_path: Path = workspace.settings.store_dir / "loop.lock"
        self._connection: Connection | None = None
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    def acquire(self) -> bool:
        """True when this process holds the lock now (taking it if it is free); never waits."""
        if self.workspace.store.dialect == "postgresql":
            return self._acquire_advisory()
        return self._acquire_file()

    def release(self) -> None:
        """Give the lock up (at shutdown), so a standby takes it at its next interval."""
        if self._connection is not None:
            try:
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": LOOP_LOCK_KEY}
                )
                self._connection.close()
            except Exception:  # the connection is gone, and the lock with it
                logger.debug("the loop lock's connection was already closed", exc_info=True)
            self._connection = None
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None

    def _acquire_advisory(self) -> bool:
        if self._connection is not None:
            try:  # still ours while its connection lives
                self._connection.execute(text("SELECT 1"))
                return True
            except Exception:
                logger.warning("the loop lock's connection broke (store restarted?); retaking it")
                self._connection.invalidate()
                self._connection = None
        engine = self.workspace.store.engine
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": LOOP_LOCK_KEY}
            ).scalar()
        except Exception:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def _acquire_file(self) -> bool:
        if self._file is not None:
            return True
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.lock_path.open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._file = handle
        return True
