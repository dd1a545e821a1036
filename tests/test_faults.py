"""Faults, healed: a full disk, a folder the server may not write and a restarted store make
requests 503 with Retry-After and /readyz not ready with the cause, and the server heals by itself
once the cause is gone, with every acknowledged event kept once.

Each fault is real: a small tmpfs mounted over the events folder, ``chattr +i`` on it (refused even
to root), and a PostgreSQL cluster of the test's own, stopped and started. Each needs root: the
tests fail under CI if they cannot set the fault up, and skip elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from steward import Steward
from steward.data.events import EventLog
from tests.conftest import CONFIG, Server, free_port


def _mount(path: Path, size: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


@pytest.fixture
def small_disk(workspace: Steward) -> Iterator[Path]:
    path = workspace.settings.events_dir
    path.mkdir(parents=True, exist_ok=True)
    try:
        _mount(path, "3m")
    except (OSError, subprocess.CalledProcessError) as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the disk-full test (mounting a tmpfs failed: {error})")
        pytest.skip(f"mounting a tmpfs needs root: {error}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _batch(start: int, n: int) -> dict[str, object]:
    filler = "x" * 400  # about half a kilobyte an event: the disk fills in a few thousand
    return {
        "predictions": [
            {"id": f"p{i}", "score": 0.5, "inputs": {"note": filler, "n": i}}
            for i in range(start, start + n)
        ]
    }


def test_a_full_disk_is_503_and_not_ready_then_heals_without_a_restart(
    workspace: Steward, small_disk: Path
) -> None:
    server = Server(workspace.settings.workspace, workspace.settings.database_url)
    server.start()
    acknowledged: list[str] = []
    try:
        url = f"{server.url}/v1/systems/churn/predictions:log"
        refused = None
        for start in range(0, 200_000, 200):
            response = httpx.post(url, json=_batch(start, 200), timeout=30)
            if response.status_code == 200:
                acknowledged.extend(f"p{i}" for i in range(start, start + 200))
                continue
            refused = response
            break
        assert refused is not None, "the 3 MB disk never filled"
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1"
        assert "No space left" in refused.json()["detail"]
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["cause"] == "event log"
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200

        subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
        deadline, healed = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            healed = httpx.get(f"{server.url}/readyz", timeout=10)
            if healed.status_code == 200:
                break
            time.sleep(0.5)
        assert healed is not None and healed.status_code == 200, healed.text if healed else ""
        again = httpx.post(url, json=_batch(500_000, 200), timeout=30)
        assert again.status_code == 200, again.text
        acknowledged.extend(f"p{i}" for i in range(500_000, 500_200))
    finally:
        server.stop()
        server.close()
    with EventLog(workspace.settings.events_dir) as events:
        ids = events.scan("prediction", "churn").column("id").to_pylist()
    assert set(acknowledged) <= set(ids)
    assert len(ids) == len(set(ids)), "an event appears twice"


@pytest.fixture
def locked_folder(workspace: Steward) -> Iterator[Callable[[bool], None]]:
    """Make the events folder immutable (``chattr +i``: even root then gets "Operation not
    permitted"), and back. Needs root and a file system with the flag (ext4 here and in CI)."""
    path = workspace.settings.events_dir
    path.mkdir(parents=True, exist_ok=True)

    def lock(on: bool) -> None:
        subprocess.run(["chattr", "-R", "+i" if on else "-i", str(path)], check=True)

    try:
        lock(True)
        lock(False)
    except (OSError, subprocess.CalledProcessError) as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the permission test (chattr failed: {error})")
        pytest.skip(f"chattr +i needs root on ext4 or similar: {error}")
    try:
        yield lock
    finally:
        lock(False)  # else the temporary folder could not be removed


def _wait_ready(server: Server, seconds: float = 30) -> httpx.Response:
    deadline, answer = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{server.url}/readyz", timeout=10)
            if answer.status_code == 200:
                return answer
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"not ready within {seconds} s: {answer.text if answer else 'no answer'}")


def test_a_folder_it_may_not_write_is_503_and_not_ready_then_heals_without_a_restart(
    workspace: Steward, locked_folder: Callable[[bool], None]
) -> None:
    server = Server(workspace.settings.workspace, workspace.settings.database_url)
    server.start()
    url = f"{server.url}/v1/systems/churn/predictions:log"
    try:
        assert httpx.post(url, json=_batch(0, 50), timeout=30).status_code == 200
        locked_folder(True)
        refused = None
        for start in range(50, 20_000, 50):  # until the writer next opens or syncs a file
            answer = httpx.post(url, json=_batch(start, 50), timeout=30)
            if answer.status_code != 200:
                refused = answer
                break
        assert refused is not None and refused.status_code == 503, refused.text if refused else ""
        assert refused.headers["retry-after"] == "1"
        assert "Operation not permitted" in refused.json()["detail"]
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["cause"] == "event log"

        locked_folder(False)
        _wait_ready(server)
        assert httpx.post(url, json=_batch(900_000, 50), timeout=30).status_code == 200
    finally:
        server.stop()
        server.close()
    with EventLog(workspace.settings.events_dir) as events:
        ids = set(events.scan("prediction", "churn").column("id").to_pylist())
    assert {f"p{i}" for i in range(50)} <= ids and {f"p{i}" for i in range(900_000, 900_050)} <= ids


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb, pg_ctl as the postgres user), so it can be
    stopped and started without touching the shared server other tests use."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="steward-pg-"))
        self.root.chmod(0o755)
        shutil.chown(self.root, "postgres", "postgres")
        self.data, self.port = self.root / "data", free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        cluster = PrivatePostgres()
        cluster.start()
    except (OSError, LookupError, subprocess.CalledProcessError) as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the store-restart test (a private cluster failed: {error})")
        pytest.skip(f"a private PostgreSQL cluster needs root and {PG_BIN}: {error}")
    yield cluster
    cluster.remove()


def test_a_restarted_store_is_503_and_not_ready_meanwhile_then_heals_without_a_restart(
    private_postgres: PrivatePostgres, tmp_path: Path, telco_model: object
) -> None:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "steward.yaml").write_text(CONFIG)
    with Steward.open(root, database_url=private_postgres.url, user="tester") as steward:
        events_dir = steward.settings.events_dir
        steward.init()
        steward.apply()
        steward.register_model(telco_model, system="churn")
        steward.move_alias("churn", "champion", 1)
    server = Server(root, private_postgres.url, environment={"STEWARD_LOOP_INTERVAL": "1"})
    server.start()
    log = f"{server.url}/v1/systems/churn/predictions:log"
    suspend = f"{server.url}/v1/systems/churn:suspend"
    try:
        assert _wait_ready(server).json()["loop"] == "leader"
        assert httpx.post(log, json=_batch(0, 20), timeout=30).status_code == 200
        private_postgres.stop()
        ready = httpx.get(f"{server.url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["cause"] == "store", ready.text
        refused = httpx.post(suspend, json={"reason": "outage"}, timeout=30)
        assert refused.status_code == 503, refused.text  # not a 500: the store is down, not a bug
        assert refused.headers["retry-after"] == "1"
        assert "metadata store did not answer" in refused.json()["detail"]
        # logging needs no store: events still go to the local write-ahead log
        assert httpx.post(log, json=_batch(20, 20), timeout=30).status_code == 200

        private_postgres.start()
        assert _wait_ready(server).json()["loop"] in ("leader", "standby")
        taken = httpx.post(suspend, json={"reason": "after the outage"}, timeout=30)
        assert taken.status_code == 200, taken.text
        deadline = time.monotonic() + 20  # the loop lock's connection broke; it is taken again
        while httpx.get(f"{server.url}/readyz", timeout=10).json()["loop"] != "leader":
            assert time.monotonic() < deadline, "the loop lock was not taken again"
            time.sleep(0.3)
    finally:
        server.stop()
        server.close()
    with EventLog(events_dir) as events:
        ids = set(events.scan("prediction", "churn").column("id").to_pylist())
    assert {f"p{i}" for i in range(40)} <= ids
