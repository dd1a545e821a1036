"""Faults, healed: a full disk makes writes 503 with Retry-After and /readyz not ready, and the
server writes again by itself once space is free, with every acknowledged event kept once.

The disk is real: a small tmpfs mounted over the workspace's events folder (root can mount in CI
and on the development machine; the test fails under CI if it cannot, and skips elsewhere).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from steward import Steward
from steward.data.events import EventLog
from tests.conftest import Server


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
