"""Telling a hook which Parquet files became durable or were removed, and why.

The event log knows nothing of the audit log above it; it only calls a hook, if it was given one,
after each roll, compaction, retention run or erasure, while it still holds the maintenance lock
(so the hook's record of two changes is in the order the files changed). The hook gets the files
added (path relative to the root, POSIX style, to the SHA-256 of the file's bytes), the files
removed (relative paths) and the reason: ``roll``, ``compact``, ``retention`` or ``erasure``.

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

from steward._util.hashing import file_sha256

__all__ = ["FileCommits", "FilesHook", "file_sha256"]

logger = logging.getLogger(__name__)

#: Called with (added: {relative path: sha256}, removed: [relative path], reason).
FilesHook = Callable[[dict[str, str], list[str], str], None]


class FileCommits:
    """Hands the Parquet files a maintenance step added or removed under ``root`` to ``hook``.

    Without a hook it does nothing (an ``EventLog`` used on its own commits nothing).
    """

    def __init__(self, root: Path, hook: FilesHook | None = None) -> None:
        self.root, self.hook = root, hook

    def __call__(
        self, reason: str, added: Iterable[Path] = (), removed: Iterable[Path] = ()
    ) -> None:
        """Tell the hook; never raise (a failed commit must not fail, or undo, the step)."""
        if self.hook is None:
            return
        added, removed = sorted(set(added)), sorted(set(removed))
        if not added and not removed:
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
