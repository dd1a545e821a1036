"""The loop's clock: a background thread that runs one tick every ``loop_interval`` seconds.

``steward serve`` starts a ``Scheduler`` with the server and stops it on shutdown; ``steward monitor
run`` (for cron) runs a single tick without one. What a tick does is ``steward.loop.tick``.

Example::

    scheduler = Scheduler(steward, events, interval=60.0)
    scheduler.start()  # the first tick runs one interval from now
    ...
    scheduler.stop()   # waits for a running tick to finish
"""

from __future__ import annotations

import logging
import threading

from steward.data.events import EventLog
from steward.loop.tick import tick
from steward.store import audit
from steward.workspace import Workspace

__all__ = ["Scheduler"]

logger = logging.getLogger(__name__)


class Scheduler:
    """Runs ``tick`` every ``interval`` seconds on a background thread until ``stop``.

    A failing tick is logged and the next one runs on time: the loop never takes the server down.
    """

    def __init__(self, steward: Workspace, events: EventLog, interval: float) -> None:
        self.steward, self.events, self.interval = steward, events, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0

    def start(self) -> None:
        """Start the thread (the first tick runs one interval from now)."""
        if self._thread is None and self.interval > 0:
            self._thread = threading.Thread(target=self._run, name="steward-loop", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                report = tick(self.steward, self.events)
                for error in report.errors:
                    logger.warning("loop: %s", error)
            except Exception:  # e.g. the store is unreachable for a moment
                logger.exception("the loop's tick failed; the next runs in %ss", self.interval)
            try:  # a quiet log is still signed now and then (store/audit.py)
                audit.checkpoint_if_due(self.steward.store, self.steward.settings.store_dir)
            except Exception:
                logger.exception("could not sign an audit checkpoint; the next tick tries again")
            self.ticks += 1

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the thread to stop and wait for a running tick to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
