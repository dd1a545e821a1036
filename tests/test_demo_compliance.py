"""The compliance report on the demo's workspace (after tests/test_demo.py, whose run it reuses)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from steward import Steward
from tests.conftest import demo_workspace, render_offline
from tests.test_compliance import _proves, _report


@pytest.mark.slow
def test_the_demos_report_renders_offline_and_its_citations_prove(tmp_path: Path) -> None:
    root, database_url = demo_workspace(tmp_path)
    steward = Steward.open(root, database_url=database_url)
    try:
        _, data = _report(steward, tmp_path, "eu-ai-act")
        cited = sorted(int(i) for i in data["entries"])
        assert len(cited) >= 10 and all(_proves(steward, entry_id) for entry_id in cited)
    finally:
        steward.close()
    text, blocked = render_offline(
        tmp_path / "eu-ai-act.html", Path("test-artifacts") / "compliance-demo.png"
    )
    assert blocked == []
    assert "Art. 14, 26(2): Human oversight by competent people" in text
    assert "dana.ortiz" in text  # the demo's approver, named as who decided
    assert "gap: a written risk management system is kept outside Steward" in text
    frame = pd.DataFrame(data["obligations"])
    assert set(frame["status"]) <= {"evidenced", "partial", "gap"}
