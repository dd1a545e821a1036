"""The event log's Parquet files on object storage: any fsspec URL (``s3://``, ``gs://``,
``abfs://``, ``file://``), kept equal to the local folder of each server that uses it.

The write-ahead log stays on local disk: an append waits for a local fsync, never for the network.
A roll writes its Parquet files locally as before, then ``publish`` uploads them (each id index
before its Parquet file) and only then is the segment deleted; if the upload fails the roll
fails, the segment stays, and the writer rolls it again later. An object becomes visible only once
its upload completes (one PUT or a completed multipart upload on S3; a temporary file renamed on
``file://``), so no reader ever sees part of a file.

The local folder is a copy of the object store. ``sync`` makes the two equal, both ways, from
one listing of the store and a manifest (``_mirror.json``) of what the folder last had in common
with it (each file's remote stamp, its ETag on S3, and its local size and mtime):

* a local file the manifest does not hold, or that changed since, is uploaded (a roll, compaction
  or erasure whose upload had not finished);
* a remote file the folder lacks, or whose stamp changed, is downloaded (another server rolled,
  compacted or erased it; or this server's step that removed it died before telling the store,
  and runs again);
* a file the manifest holds that is gone from the store, unchanged here, is deleted here.

Files leave the store only through ``publish``, by name, when a compaction, retention run or
erasure removed them: a local folder deleted by hand is downloaded again, never propagated.
Erasure tombstones (``_erasures.json``) are merged both ways. ``docs/scale.md`` says how several
servers share one store and what each sees when.

Example::

    mirror = ObjectMirror("s3://events/steward", Path(".steward/events"))
    mirror.publish(added=[Path(".steward/events/kind=prediction/system=churn/date=2026-11-22/"
                              "part-w1-000000000001.parquet")])
    mirror.sync()  # SyncCounts(uploaded=0, downloaded=3, dropped=0)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import fsspec

from steward.data.events.durable import CrashPoint, fsync_directory, make_directories
from steward.data.events.layout import indexed_parquet
from steward.data.events.tombstones import merge_erasures
from steward.errors import StoreError

__all__ = ["MANIFEST_FILE", "ObjectMirror", "SyncCounts"]

#: The manifest of what the local folder last had in common with the object store.
MANIFEST_FILE: Final = "_mirror.json"
_LOCK_FILE: Final = "_mirror.lock"
_ERASURES: Final = "_erasures.json"
# kind=K/system=S/date=D/<file>, where the file is a Parquet file or an id index (not hidden).
_MIRRORED: Final = re.compile(r"kind=[^/]+/system=[^/]+/date=[^/]+/(?![.])[^/]+\.(parquet|ids)")
# Short network timeouts, so a store that is down fails a roll in seconds rather than minutes;
# and each log a client of its own (fsspec shares one per set of options, with the endpoint and
# credentials it found first).
_S3_OPTIONS: Final = {
    "config_kwargs": {"connect_timeout": 3, "read_timeout": 30, "retries": {"max_attempts": 2}},
    "skip_instance_cache": True,
}

# (remote stamp, local size, local mtime in ns)
Entry = tuple[str, int, int]


@dataclass(frozen=True)
class SyncCounts:
    """What one ``sync`` did: files uploaded, downloaded, and dropped here (gone from the store)."""

    uploaded: int = 0
    downloaded: int = 0
    dropped: int = 0


class ObjectMirror:
    """Keeps the Parquet files (and id indexes) of a local event-log folder at an fsspec URL."""

    def __init__(self, url: str, root: Path, crash: CrashPoint | None = None) -> None:
        self.url = url.rstrip("/")
        self.root = Path(root)
        self._crash = crash or CrashPoint(None)
        self._fs: Any
        try:
            options = _S3_OPTIONS if self.url.startswith("s3://") else {}
            self._fs, base = fsspec.core.url_to_fs(self.url, **options)
        except (ImportError, ValueError) as error:
            raise StoreError(
                f"event log object store {self.url!r} cannot be opened: {error}; check the URL "
                "and install its backend (pip install 'steward[s3]', 'steward[gcs]' or "
                "'steward[azure]')"
            ) from error
        self._base = str(base).rstrip("/")
        self._local = self.url.partition("://")[0].lower() == "file"
        self._failure: str | None = None
        self._guard = threading.Lock()

    @property
    def failure(self) -> str | None:
        """Why the last upload, download or listing failed, or None once one succeeded since."""
        return self._failure

    # -- the two operations

    def publish(
        self, added: Iterable[Path] = (), removed: Iterable[Path] = (), *, tombstones: bool = False
    ) -> None:
        """Upload the Parquet files ``added`` (with their id indexes) and delete the files
        ``removed`` (with theirs) from the store. Raises ``StoreError`` on failure: what was not
        sent is sent by the next ``publish`` or ``sync``; what was not deleted is downloaded
        again by a ``sync`` (and removed again by the step that removed it)."""
        with self._reaching("publish to"), self._locked() as manifest:
            folders = sorted({self._relative(path.parent) for path in added})
            if folders:
                self._push(manifest, folders)
            self._remove(manifest, [self._relative(path) for path in [*added, *removed]])
            if tombstones:
                self._merge_tombstones()
            self._save(manifest)

    def sync(self) -> SyncCounts:
        """Make the folder and the store equal (see the module's rules). Call it with the event
        log's maintenance lock held exclusive, so no roll or compaction is half done here."""
        with self._reaching("synchronize with"), self._locked() as manifest:
            uploaded = self._push(manifest, None)
            self._merge_tombstones()
            downloaded, dropped = self._pull(manifest, self._listing())
            if uploaded or downloaded or dropped:
                self._save(manifest)
            return SyncCounts(uploaded, downloaded, dropped)

    # -- pushing: local changes to the store

    def _push(self, manifest: dict[str, Entry], folders: Sequence[str] | None) -> int:
        """Upload the files of ``folders`` (of every partition when None) that the manifest
        does not hold as they are now; every index first, then the Parquet files, so a reader
        that finds a file finds its index."""
        changed = {
            rel: stat
            for folder in (folders if folders is not None else [None])
            for rel, stat in self._local_files(folder).items()
            if rel not in manifest or manifest[rel][1:] != stat
        }
        if not changed:
            return 0
        for suffix in (".ids", ".parquet"):
            self._upload([rel for rel in sorted(changed) if rel.endswith(suffix)])
            self._crash.hit("mirror.uploaded")
        stamps = self._stamps({rel.rpartition("/")[0] for rel in changed})
        for rel, stat in changed.items():
            manifest[rel] = (stamps.get(rel, ""), *stat)
        return len(changed)

    def _remove(self, manifest: dict[str, Entry], parquet: list[str]) -> None:
        """Delete from the store each of these Parquet files that is gone here, then every index
        of theirs that is gone here (an erasure's rewrite may have renamed one)."""
        named = set(parquet)
        gone = [
            rel
            for rel in manifest
            if (rel in named or _parquet_of(rel) in named) and not (self.root / rel).exists()
        ]
        # a Parquet file before its index: a reader that finds no file ignores the index
        for rel in sorted(gone, key=lambda name: (not name.endswith(".parquet"), name)):
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm_file(self._key(rel))
            manifest.pop(rel)

    def _upload(self, names: list[str]) -> None:
        """Upload files, each whole or not at all (concurrently on an object store)."""
        if not names:
            return
        if not self._local:
            self._fs.put([str(self.root / rel) for rel in names], [self._key(rel) for rel in names])
            return
        for rel in names:
            target = Path(self._key(rel))
            make_directories(target.parent)
            temporary = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(self.root / rel, temporary)
            with open(temporary, "rb+") as file:
                os.fsync(file.fileno())
            os.replace(temporary, target)
            fsync_directory(target.parent)

    def _stamps(self, folders: set[str]) -> dict[str, str]:
        """The stamp of every file of these folders in the store, one listing per folder."""
        stamps = {}
        for folder in sorted(folders):
            key = self._key(folder)
            self._fs.invalidate_cache(key)
            for info in self._fs.ls(key, detail=True):
                stamps[f"{folder}/{str(info['name']).rpartition('/')[2]}"] = _stamp(info)
        return stamps

    # -- pulling: other servers' changes to the folder

    def _pull(self, manifest: dict[str, Entry], remote: dict[str, str]) -> tuple[int, int]:
        fetch = [
            rel
            for rel, stamp in remote.items()
            if rel not in manifest or manifest[rel][0] != stamp or not (self.root / rel).exists()
        ]
        for suffix in (".ids", ".parquet"):  # every index first, as uploads do
            names = sorted(rel for rel in fetch if rel.endswith(suffix))
            for rel, stat in zip(names, self._download(names), strict=True):
                manifest[rel] = (remote[rel], *stat)
        stale = [
            rel
            for rel, entry in manifest.items()
            if rel not in remote and _local_stat(self.root / rel) in (entry[1:], None)
        ]
        for rel in sorted(stale, key=lambda name: (not name.endswith(".parquet"), name)):
            (self.root / rel).unlink(missing_ok=True)
            manifest.pop(rel)
        return len(fetch), len(stale)

    def _download(self, names: list[str]) -> list[tuple[int, int]]:
        """Download files (concurrently) to hidden temporaries, then fsync and rename each into
        place; return each one's local (size, mtime)."""
        if not names:
            return []
        targets = [self.root / rel for rel in names]
        temporaries = [target.with_name(f".{target.name}.tmp") for target in targets]
        for target in targets:
            make_directories(target.parent)
        self._fs.get([self._key(rel) for rel in names], [str(path) for path in temporaries])
        stats = []
        for temporary, target in zip(temporaries, targets, strict=True):
            with open(temporary, "rb+") as file:
                os.fsync(file.fileno())
            os.replace(temporary, target)
            stat = _local_stat(target)
            assert stat is not None  # just renamed into place, under the exclusive lock
            stats.append(stat)
        for directory in {target.parent for target in targets}:
            fsync_directory(directory)
        return stats

    # -- tombstones

    def _merge_tombstones(self) -> None:
        key = f"{self._base}/{_ERASURES}"
        try:
            remote = json.loads(self._fs.cat_file(key))["erasures"]
        except FileNotFoundError:
            remote = []
        merged = merge_erasures(self.root, remote)
        if len(merged) != len(remote):
            self._fs.pipe_file(key, json.dumps({"version": 1, "erasures": merged}).encode())

    # -- listings, keys, the manifest

    def _listing(self) -> dict[str, str]:
        self._fs.invalidate_cache(self._base)
        try:
            found = self._fs.find(self._base, detail=True)
        except FileNotFoundError:
            return {}
        prefix = f"{self._base}/"
        listing = {}
        for name, info in found.items():
            rel = str(name).removeprefix(prefix)
            if _MIRRORED.fullmatch(rel):
                listing[rel] = _stamp(info)
        return listing

    def _local_files(self, folder: str | None = None) -> dict[str, tuple[int, int]]:
        pattern = f"{folder}/*" if folder else "kind=*/system=*/date=*/*"
        files = {}
        for path in self.root.glob(pattern):
            rel = path.relative_to(self.root).as_posix()
            stat = _local_stat(path) if _MIRRORED.fullmatch(rel) else None
            if stat is not None:
                files[rel] = stat
        return files

    def _key(self, rel: str) -> str:
        return f"{self._base}/{rel}"

    def _relative(self, directory: Path) -> str:
        return Path(directory).relative_to(self.root).as_posix()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Entry]]:
        """The manifest, read and written under a lock every process on this folder takes."""
        make_directories(self.root)
        with self._guard, open(self.root / _LOCK_FILE, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield self._load()
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _load(self) -> dict[str, Entry]:
        try:
            document = json.loads((self.root / MANIFEST_FILE).read_text())
        except FileNotFoundError:
            return {}
        if document.get("url") != self.url:  # the folder was a copy of another store
            return {}
        return {rel: (entry[0], entry[1], entry[2]) for rel, entry in document["files"].items()}

    def _save(self, manifest: dict[str, Entry]) -> None:
        path = self.root / MANIFEST_FILE
        temporary = path.with_name(f".{path.name}.tmp")
        document = {"version": 1, "url": self.url, "files": manifest}
        temporary.write_text(json.dumps(document, sort_keys=True))
        os.replace(temporary, path)

    @contextlib.contextmanager
    def _reaching(self, verb: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except Exception as error:
            self._failure = (
                f"event log could not {verb} the object store {self.url}: "
                f"{type(error).__name__}: {error}; the files stay on local disk and are sent "
                "when it answers again"
            )
            raise StoreError(self._failure) from error
        self._failure = None


def _stamp(info: dict[str, Any]) -> str:
    """What changes when an object is written again: its ETag, or its size and mtime."""
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return str(etag).strip('"')
    return f"{info.get('size')}:{info.get('mtime') or info.get('LastModified') or ''}"


def _local_stat(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _parquet_of(rel: str) -> str | None:
    """The Parquet file (relative path) an id index belongs to, or None for another file."""
    folder, _, name = rel.rpartition("/")
    parquet = indexed_parquet(name)
    return None if parquet is None else f"{folder}/{parquet}"
