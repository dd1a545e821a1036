"""Telling a hook which Parquet files became durable or were removed, and why.

The event log knows nothing of the audit log above it; it only calls a hook, if it was given one,
after each roll, compaction, retention run or erasure, while it still holds the maintenance lock
(so the hook's record of two changes is in the order the files changed). The hook gets the files
added (path relative to the root, POSIX style, to the SHA-256 of the file's bytes), the files
removed (relative paths) and the reason: ``roll``, ``compact``, ``retention`` or ``erasure``.

With an object store (``mirror``), the files are first published there; that step does raise,
so a roll whose upload failed keeps its write-ahead segment and runs again.

A hook that raises loses nothing: the files stay where they are and the error is logged as a
warning; the audit log's ``verify`` then reports those files as not committed.

Example::

    commits = FileCommits(root, lambda added, removed, reason: print(reason, added, removed))
    commits("roll", added=[root / "kind=prediction/system=churn/date=2026-11-22/part-w-1.parquet"])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from steward._util.hashing import file_sha256

__all__ = ["FileCommits", "FilesHook", "file_sha256"]

logger = logging.getLogger(__name__)

#: Called with (added: {relative path: sha256}, removed: [relative path], reason).
FilesHook = Callable[[dict[str, str], list[str], str], None]


class Publisher(Protocol):
    """Where the files also go (``mirror.ObjectMirror``)."""

    def publish(
        self, added: Iterable[Path] = (), removed: Iterable[Path] = (), *, tombstones: bool = False
    ) -> None: ...


class FileCommits:
    """Hands the Parquet files a maintenance step added or removed under ``root`` to ``hook``,
    after publishing them to ``mirror`` when there is one.

    Without a hook or a mirror it does nothing (an ``EventLog`` used on its own commits nothing).
    """

    def __init__(
        self, root: Path, hook: FilesHook | None = None, mirror: Publisher | None = None
    ) -> None:
        self.root, self.hook, self.mirror = root, hook, mirror

    def __call__(
        self, reason: str, added: Iterable[Path] = (), removed: Iterable[Path] = ()
    ) -> None:
        """Publish the files (raising ``StoreError`` if the object store fails), then tell the
        hook (never raising: a failed commit must not fail, or undo, the step)."""
        added, removed = sorted(set(added)), sorted(set(removed))
        if self.mirror is not None and (added or removed or reason == "erasure"):
            self.mirror.publish(added, removed, tombstones=reason == "erasure")
        if self.hook is None or (not added and not removed):
            return
        try:
            digests = {self._relative(path): file_sha256(path) for path in added}
            self.hook(digests, [self._relative(path) for path in removed], reason)
        except Exception as error:  # the hook's failure must never cost an event
            logger.warning(
                "event log at %s: the %s of %d file(s) and removal of %d was not committed to the "
                "audit log (%s: %s); the files stay, and `steward audit verify` reports them",
                self.root,
                reason,
                len(added),
                len(removed),
                type(error).__name__,
                error,
            )

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()
