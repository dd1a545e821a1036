"""Two processes writing the registry at once leave a consistent store (SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd

from steward import Steward

MOVER = textwrap.dedent("""
    import sys
    from steward import Steward
    workspace, url, name, versions = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    steward = Steward.open(workspace, database_url=url, user=name)
    for step in range(25):
        for version in versions.split(","):
            steward.move_alias("churn", "champion", int(version), reason=f"{name} {step}")
    steward.close()
""")

REGISTRAR = textwrap.dedent("""
    import sys
    from sklearn.dummy import DummyRegressor
    from steward import Steward
    workspace, url, name = sys.argv[1], sys.argv[2], sys.argv[3]
    steward = Steward.open(workspace, database_url=url, user=name)
    for step in range(6):
        model = DummyRegressor(strategy="constant", constant=float(len(name) * 100 + step))
        steward.register_model(model.fit([[0.0]], [0.0]), system="churn")
    steward.close()
""")


def run_together(script: str, workspace: Steward, args: list[list[str]]) -> None:
    url = workspace.settings.database_url
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(workspace.settings.workspace), url, *extra],
            stderr=subprocess.PIPE,
            text=True,
        )
        for extra in args
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr


def test_two_processes_moving_aliases_leave_a_chained_history(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    from steward.demo import train_churn_model

    for C in (1.0, 0.5, 0.1, 0.05):
        workspace.register_model(train_churn_model(*telco, C=C), system="churn")
    run_together(MOVER, workspace, [["alice", "1,2"], ["bob", "3,4"]])

    history = workspace.history("churn", "champion")
    assert len(history) == 2 * 25 * 2
    previous = None
    for move in history:
        assert move.from_version == previous, "each move must start where the last one ended"
        previous = move.to_version
    assert workspace.version("churn", "champion").version == previous
    assert {move.moved_by for move in history} == {"alice", "bob"}
    assert workspace.verify_audit().ok


def test_two_processes_registering_get_distinct_version_numbers(workspace: Steward) -> None:
    run_together(REGISTRAR, workspace, [["alice"], ["bob"]])
    versions = workspace.versions("churn")
    assert [version.version for version in versions] == list(range(1, 13))
    assert len({version.artifact_sha256 for version in versions}) == 12
    assert {version.registered_by for version in versions} == {"alice", "bob"}
    assert workspace.verify_audit().ok
