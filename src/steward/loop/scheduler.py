"""The loop's clock: a background thread that runs one tick every ``loop_interval`` seconds.

``steward serve`` starts a ``Scheduler`` with the server and stops it on shutdown; ``steward monitor
run`` (for cron) runs a single tick without one. What a tick does is ``steward.loop.tick``. Of the
servers sharing one store, only the one holding the loop lock ticks (``steward.loop.leader``); the
others stand by and ask again every interval.

Example::

    scheduler = Scheduler(steward, events, interval=60.0)
    scheduler.start()  # the first tick runs one interval from now
    ...
    scheduler.stop()   # waits for a running tick to finish
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from steward.data.events import EventLog
from steward.loop.leader import LoopLock
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
        self.lock = LoopLock(steward)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        #: Intervals gone by, ticked or not (a standby, or a store that is down, ticks none).
        self.rounds = 0
        #: Called after each tick this server ran (the server counts them in ``/metrics``).
        self.on_tick: Callable[[], None] = lambda: None

    @property
    def role(self) -> str:
        """``leader`` (this process runs the loop), ``standby`` (another does) or ``off``."""
        if self._thread is None:
            return "off"
        return "leader" if self.lock.held else "standby"

    def start(self) -> None:
        """Ask for the loop lock, then start the thread (the first tick runs one interval from now)."""
        if self._thread is None and self.interval > 0:
            if not self._leading():
                logger.info("another server holds the loop lock; this one stands by")
            self._thread = threading.Thread(target=self._run, name="steward-loop", daemon=True)
            self._thread.start()

    def _leading(self) -> bool:
        was = self.lock.held
        try:
            leading = self.lock.acquire()
        except Exception as error:  # the store is unreachable: nobody leads through it for now
            logger.warning(
                "could not ask for the loop lock (%s); again in %ss", error, self.interval
            )
            return False
        if leading != was:
            logger.warning("this server %s the loop", "now runs" if leading else "no longer runs")
        return leading

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.rounds += 1
            if not self._leading():
                continue
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
            self.on_tick()

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the thread to stop and wait for a running tick to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.lock.release()
