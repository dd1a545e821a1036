"""The weekly report: built from the store, rendered in chromium with the network cut off."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from steward import Steward
from steward.cli.main import cli
from steward.data.events import EventLog
from steward.demo import train_churn_model
from steward.render.weekly import WEEKS_COMPARED, week_label, weekly_report
from steward.store import ActionRow, AlertRow, MonitorResultRow, select
from steward.store import System as SystemRow
from tests.conftest import render_offline

AT = datetime(2026, 3, 9, 12, tzinfo=UTC)


def _drift_details(alarmed: str | None) -> dict[str, object]:
    return {
        "results": [
            {
                "column": column,
                "method": "ks",
                "statistic": 0.4 if column == alarmed else 0.02,
                "threshold": 0.1,
                "alarm": column == alarmed,
            }
            for column in ("tenure", "MonthlyCharges")
        ]
    }


@pytest.fixture
def reported(
    workspace: Steward, telco: tuple[pd.DataFrame, pd.Series], telco_model: object
) -> Iterator[Steward]:
    """Three weeks of stored results: realized AUC falling, drift in tenure this week, a promotion."""
    workspace.register_model(telco_model, system="churn", metrics={"roc_auc": 0.84})
    workspace.move_alias("churn", "champion", 1, reason="first release")
    with workspace.store.write() as session:
        system_id = session.scalars(select(SystemRow.id)).one()
        for weeks_ago, auc in ((2, 0.83), (1, 0.82), (0, 0.74)):
            end = AT - timedelta(days=7 * weeks_ago + 1)
            common = {"system_id": system_id, "window_start": end - timedelta(days=7)}
            session.add(
                MonitorResultRow(
                    **common,
                    window_end=end,
                    monitor="performance",
                    status="ok",
                    summary="auc",
                    details={
                        "metrics": [
                            {
                                "metric": "roc_auc",
                                "value": auc,
                                "lower": auc - 0.03,
                                "upper": auc + 0.03,
                                "model_version": 1,
                                "n_labeled": 800,
                            }
                        ],
                        "unlabeled_share": 0.2,
                    },
                )
            )
            session.add(
                MonitorResultRow(
                    **common,
                    window_end=end,
                    monitor="drift",
                    status="breach" if weeks_ago == 0 else "ok",
                    summary="drift",
                    details=_drift_details("tenure" if weeks_ago == 0 else None),
                )
            )
        alert = AlertRow(
            system_id=system_id,
            rule="monitor:drift",
            summary="drift in tenure",
            fired_at=AT - timedelta(days=1),
            last_seen_at=AT - timedelta(days=1),
        )
        session.add(alert)
        session.flush()
        session.add(
            ActionRow(
                system_id=system_id,
                alert_id=alert.id,
                kind="retrain",
                status="done",
                reason="performance fell; retrained on the last 28 days",
                actor="steward",
                created_at=AT - timedelta(hours=20),
            )
        )
    second = workspace.register_model(
        train_churn_model(*telco, C=0.5), system="churn", metrics={"roc_auc": 0.85}
    )
    assert second.version.version == 2
    yield workspace


def _events(steward: Steward) -> EventLog:
    return EventLog(steward.settings.events_dir, fsync=False)


def test_week_label_is_the_iso_week_of_the_reports_last_moment() -> None:
    assert week_label(datetime(2026, 3, 9, tzinfo=UTC)) == "2026-W10"  # Monday 00:00 ends W10
    assert week_label(datetime(2026, 3, 9, 0, 1, tzinfo=UTC)) == "2026-W11"


def test_report_compares_the_week_with_the_weeks_before(reported: Steward) -> None:
    reported.move_alias("churn", "champion", 2, reason="v2 beats v1")
    with _events(reported) as events:
        report = weekly_report(reported, events, "churn", at=datetime.now(UTC))
        past = weekly_report(reported, events, "churn", at=AT)
    assert len(past.weeks) == WEEKS_COMPARED
    aucs = [week.realized_auc[0] if week.realized_auc else None for week in past.weeks]
    assert aucs[-3:] == [0.83, 0.82, 0.74] and aucs[0] is None
    assert past.drifted == [("tenure", 1)]
    assert [alert.summary for alert in past.alerts] == ["drift in tenure"]
    assert [action.kind for action in past.actions] == ["retrain"]
    assert [(move.from_version, move.to_version) for move in report.moves][-1] == (1, 2)
    assert report.champion == 2


def test_report_renders_offline_with_the_drift_and_the_promotion(
    reported: Steward, tmp_path: Path
) -> None:
    reported.move_alias("churn", "champion", 2, reason="v2 beats v1 on the golden set")
    runner = CliRunner()
    output = tmp_path / "report.html"
    result = runner.invoke(
        cli,
        [
            "--workspace",
            str(reported.settings.workspace),
            "--database-url",
            reported.settings.database_url,
            "report",
            "churn",
            "--week",
            "--output",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    html = output.read_text()
    assert "<script" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    screenshot = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
    text, blocked = render_offline(output, screenshot / f"report-{reported.store.dialect}.png")
    assert blocked == []
    assert "champion moved: v1 → v2" in text and "v2 beats v1 on the golden set" in text
    with _events(reported) as events:
        past = weekly_report(reported, events, "churn", at=AT)
    past_file = past.write(tmp_path / "past.html")
    text, blocked = render_offline(past_file, screenshot / "report-past.png")
    assert blocked == []
    assert "tenure: alarmed in 1 monitored window" in text
    assert "0.740 (0.710–0.770)" in text and "drift in tenure" in text


def test_report_default_file_name_is_report_system_week(
    reported: Steward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli,
        [
            "--workspace",
            str(reported.settings.workspace),
            "--database-url",
            reported.settings.database_url,
            "report",
            "churn",
            "--at",
            "2026-03-09T12:00",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report-churn-2026-W11.html").exists()


def test_report_rejects_a_bad_date_in_one_line(reported: Steward) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "--workspace",
            str(reported.settings.workspace),
            "--database-url",
            reported.settings.database_url,
            "report",
            "churn",
            "--at",
            "soon",
        ],
    )
    assert result.exit_code == 1
    assert "--at 'soon' is not a date" in result.output


def test_an_alert_still_firing_from_an_earlier_week_is_in_this_weeks_report(
    reported: Steward,
) -> None:
    """The report said "No alert fired" while alerts that fired weeks before were still open."""
    with reported.store.write() as session:
        system_id = session.scalars(select(SystemRow.id)).one()
        for rule, resolved in (("slo:latency", None), ("monitor:volume", AT - timedelta(days=15))):
            session.add(
                AlertRow(
                    system_id=system_id,
                    rule=rule,
                    summary=rule,
                    fired_at=AT - timedelta(days=20),
                    last_seen_at=AT - timedelta(days=2),
                    state="firing" if resolved is None else "resolved",
                    resolved_at=resolved,
                )
            )
    with _events(reported) as events:
        report = weekly_report(reported, events, "churn", at=AT)
    assert [alert.rule for alert in report.alerts] == ["slo:latency", "monitor:drift"]
    html = report.to_html()
    assert "(before this week)" in html and "No alert fired" not in html
