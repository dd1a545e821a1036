"""What a notebook shows: results, cards and reports render themselves (offline) and become pandas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import numpy as np
import pandas as pd

from steward import Steward
from steward.monitoring.metrics.fairness import fairness_by_group
from steward.monitoring.result import MonitorResult

T0 = datetime(2026, 3, 2, tzinfo=UTC)


class _Fetches(HTMLParser):
    """Every script, and every attribute that would fetch something over the network."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.found.append("script")
        for name, value in attrs:
            if name in ("src", "href") and value and value.startswith(("http:", "https:", "//")):
                self.found.append(f"{tag} {name}={value}")


def _offline(markup: str) -> bool:
    parser = _Fetches()
    parser.feed(markup)
    return parser.found == []


def test_a_monitor_result_shows_its_verdict_and_rows() -> None:
    rows = [
        {"column": "tenure", "method": "ks", "statistic": 0.21, "alarm": True},
        {"column": "plan", "method": "chi2", "statistic": 0.01, "alarm": False},
    ]
    result = MonitorResult(
        "churn", "drift", T0, T0 + timedelta(days=7), "breach", "drift in tenure & <plan>",
        {"results": rows},
    )  # fmt: skip
    frame = result.to_frame()
    assert list(frame["column"]) == ["tenure", "plan"] and frame["alarm"].tolist() == [True, False]
    shown = result._repr_html_()
    assert "breach" in shown and "drift in tenure &amp; &lt;plan&gt;" in shown and _offline(shown)
    bare = MonitorResult("churn", "volume", T0, T0, "ok", "fine")
    assert bare.to_frame().loc[0, "status"] == "ok"


def test_a_fairness_result_shows_gaps_and_groups() -> None:
    rng = np.random.default_rng(1)
    groups = np.repeat(["a", "b"], 200)
    result = fairness_by_group(
        rng.integers(0, 2, 400), rng.integers(0, 2, 400), groups, attribute="sex", n_boot=200
    )
    shown = result._repr_html_()
    assert "demographic_parity_difference" in shown and "sex (95% interval)" in shown
    assert _offline(shown)
    assert isinstance(result.to_frame(), pd.DataFrame)


def test_a_model_card_renders_itself(workspace: Steward, telco_model: object) -> None:
    workspace.register_model(telco_model, system="churn")
    card = workspace.card("churn", 1)
    shown = card._repr_html_()
    assert shown == card.to_html() and "churn" in shown and _offline(shown)


def test_a_drift_report_renders_itself_and_converts_to_pandas() -> None:
    from steward.data.drift import compare

    rng = np.random.default_rng(0)
    report = compare(
        pd.DataFrame({"x": rng.normal(size=500)}), pd.DataFrame({"x": rng.normal(1, 1, 500)})
    )
    shown = report._repr_html_()
    assert shown == report.to_html() and "<svg" in shown and _offline(shown)
    assert "x" in set(report.to_frame()["column"])
