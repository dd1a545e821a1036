"""``steward demo --no-serve`` through the CLI tells the whole churn story, read back from the store.

One run on SQLite (seed 0) and one on PostgreSQL (seed 1); a third test checks that the two seeds
give other figures and the same story. Both run the README's size (400 customers a week).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from steward import Steward
from steward.cli.main import cli
from steward.demo import DEMO_CONFIG, prepare_workspace
from steward.errors import ConfigError
from steward.governance.access import Role, add_identity, login_link
from steward.store import ActionRow, AlertRow, AliasMove, ApprovalRow, MonitorResultRow
from tests.conftest import CHROMIUM_ARGS, Server, render_offline
from tests.test_dashboard import SCREENSHOTS, Watched

CUSTOMERS = "400"


@dataclass
class Told:
    workspace: Path
    output: str
    summary: dict[str, Any]
    database_url: str


_RUNS: dict[str, Told] = {}


def _tell(tmp_path: Path, database_url: str, seed: int) -> Told:
    workspace = tmp_path / "demo"
    arguments = ["--workspace", str(workspace), "--database-url", database_url, "demo"]
    options = ["--no-serve", "--seed", str(seed), "--customers-per-week", CUSTOMERS]
    result = CliRunner().invoke(cli, [*arguments, *options], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((workspace / "demo-summary.json").read_text())
    return Told(workspace, result.output, summary, database_url)


def _week_of(summary: dict[str, Any], moment: datetime) -> int:
    for week in summary["weeks"]:
        if datetime.fromisoformat(week["start"]) < moment <= datetime.fromisoformat(week["end"]):
            return int(week["week"])
    raise AssertionError(f"{moment} is outside the replayed weeks")


def _check_story(told: Told) -> None:
    steward = Steward.open(told.workspace, database_url=told.database_url)
    try:
        with steward.store.read() as session:
            alerts = list(session.scalars(select(AlertRow).order_by(AlertRow.id)))
            drift = [alert for alert in alerts if alert.rule == "monitor:drift"]
            assert drift, "no drift alert fired"
            assert _week_of(told.summary, drift[-1].fired_at) == 7
            breaches = session.scalars(
                select(MonitorResultRow).where(
                    MonitorResultRow.monitor == "drift", MonitorResultRow.status == "breach"
                )
            ).all()
            assert "InternetService" in breaches[0].summary
            performance = [alert for alert in alerts if alert.rule == "monitor:performance"]
            assert performance and _week_of(told.summary, performance[0].fired_at) == 9
            retrains = session.scalars(select(ActionRow).where(ActionRow.kind == "retrain")).all()
            assert [action.status for action in retrains] == ["done"]
            approvals = session.scalars(select(ApprovalRow)).all()
            assert [(a.state, a.decided_by) for a in approvals] == [("approved", "dana.ortiz")]
            moves = session.scalars(select(AliasMove).order_by(AliasMove.id)).all()
            challenger = [m.to_version for m in moves if m.alias == "challenger"]
            champion = [m.to_version for m in moves if m.alias == "champion"]
            assert challenger == [2] and champion == [1, 2]
        assert steward.verify_audit().ok
    finally:
        steward.close()
    uplift = told.summary["uplift"]
    assert uplift["enough_data"] and uplift["uplift"] < 0  # calls lower churn
    assert uplift["uplift_low"] < uplift["uplift"] < uplift["uplift_high"]
    weeks = told.summary["weeks"]
    assert weeks[6]["new_product"] > 0 and weeks[5]["new_product"] == 0
    assert weeks[6]["flagged"] > 0.2 * weeks[6]["customers"]
    assert told.summary["champion"] == 2
    assert (told.workspace / "cards" / "churn-v2.md").exists()
    for line in ("product launch", "alert fired: monitor:drift", "approves promotion"):
        assert line in told.output


def test_demo_tells_the_story_on_sqlite(tmp_path: Path) -> None:
    told = _tell(tmp_path, f"sqlite:///{tmp_path / 'steward.db'}", seed=0)
    _RUNS["sqlite"] = told
    _check_story(told)


def test_demo_tells_the_story_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    told = _tell(tmp_path, postgres_url, seed=1)
    _RUNS["postgresql"] = told
    _check_story(told)


def test_another_seed_gives_other_figures_and_the_same_story(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # The runs above when they ran first in this process (xdist may order them otherwise), else
    # fresh ones: the comparison never skips.
    if "sqlite" not in _RUNS:
        (tmp_path / "lite").mkdir()
        _RUNS["sqlite"] = _tell(tmp_path / "lite", f"sqlite:///{tmp_path / 'lite.db'}", seed=0)
    if "postgresql" not in _RUNS:
        (tmp_path / "pg").mkdir()
        _RUNS["postgresql"] = _tell(tmp_path / "pg", request.getfixturevalue("postgres_url"), 1)
    first, second = _RUNS["sqlite"].summary, _RUNS["postgresql"].summary
    assert first["uplift"]["uplift"] != second["uplift"]["uplift"]
    assert [w["contacted"] for w in first["weeks"]] != [w["contacted"] for w in second["weeks"]]
    assert first["champion"] == second["champion"] == 2


def test_demo_refuses_a_workspace_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "steward.yaml").write_text("version: 1\nsystems: []\n")
    with pytest.raises(ConfigError, match="did not write"):
        prepare_workspace(tmp_path)
    (tmp_path / "steward.yaml").write_text(DEMO_CONFIG)
    (tmp_path / "demo-summary.json").write_text("{}")
    prepare_workspace(tmp_path)
    assert not (tmp_path / "demo-summary.json").exists()


def test_the_demos_workspace_browses_and_reports_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every dashboard page over what the demo left, a drift cell clicked, a review approved, and
    the weekly report read in chromium with the network cut: the drift and the promotion show."""
    told = _RUNS.get("sqlite") or _tell(tmp_path, f"sqlite:///{tmp_path / 'steward.db'}", seed=0)
    monkeypatch.setenv("STEWARD_LOOP_INTERVAL", "0")  # the story is told; nothing more to run
    # Signed in as a person would be: the login link, then the session cookie and CSRF token the
    # dashboard's own script sends with the review approval.
    server = Server(told.workspace, told.database_url, insecure_local=False)
    server.start()
    opened = Steward.open(told.workspace, database_url=told.database_url)
    add_identity(opened, "lee", Role.OPERATOR)
    link = login_link(opened, "lee").secret
    opened.close()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            try:
                watched = Watched(browser, server.url)
                signed_in = watched.page.goto(f"{server.url}/ui/login?token={link}")
                assert signed_in is not None and signed_in.status == 200
                assert watched.page.url == f"{server.url}/"
                _browse_the_story(watched)
            finally:
                browser.close()
    finally:
        server.close()
    report = tmp_path / "report.html"
    # The week the promotion happened: on the demo's one clock that is a simulated week, not today.
    steward = Steward.open(told.workspace, database_url=told.database_url)
    with steward.store.read() as session:
        promoted = session.scalars(
            select(AliasMove.moved_at).where(
                AliasMove.alias == "champion", AliasMove.to_version == 2
            )
        ).one()
    steward.close()
    week_end = (promoted + timedelta(minutes=1)).isoformat()
    result = CliRunner().invoke(
        cli,
        [
            *("--workspace", str(told.workspace), "--database-url", told.database_url),
            *("report", "churn", "--week", "--at", week_end, "--output", str(report)),
        ],
    )
    assert result.exit_code == 0, result.output
    text, blocked = render_offline(report, SCREENSHOTS / "demo-report.png")
    assert blocked == []
    assert "InternetService" in text and "alarmed in" in text  # what drifted
    assert "champion moved: v1 → v2" in text and "dana.ortiz" in text  # the promotion


def _browse_the_story(watched: Watched) -> None:
    page = watched.visit("/", "demo-overview")
    assert page.locator('tr[data-system="churn"]').count() == 1
    page = watched.visit("/ui/systems/churn?range=90d", "demo-system")
    assert page.locator("#heatmap svg rect.cell.alarm").count() > 0
    page.locator("#heatmap svg rect.cell.alarm").first.click()
    page.locator("#overlay svg.overlay").wait_for(timeout=10_000)
    page.screenshot(path=str(SCREENSHOTS / "demo-drift-overlay.png"), full_page=True)
    page = watched.visit("/ui/systems/churn/versions?a=1&b=2", "demo-versions")
    assert page.locator("#diff tr.changed").count() > 0
    watched.visit("/ui/systems/churn/versions/2", "demo-version")
    page = watched.visit("/ui/systems/churn/reviews", "demo-reviews")
    rows = page.locator("#reviews > tbody > tr")
    before = rows.count()
    assert before > 0, "the policy's review band sends some customers to a person"
    rows.first.locator("button.approve-review").click()
    page.locator("#review-message.ok").wait_for(timeout=10_000)
    assert rows.count() == before - 1
    page = watched.visit("/ui/history?system=churn", "demo-history")
    assert "approval" in page.locator("#history").inner_text()
    assert watched.errors == []


def _page_text(html: str) -> str:
    """What a person reads on a page: tags, scripts and styles dropped."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def _impossible(text: str) -> list[str]:
    """Python's None, NaN, and shares outside 0-100% on a rendered page."""
    found = re.findall(r"\b(?:None|nan|NaN)\b", text)
    found += [
        f"{value}%"
        for value in re.findall(r"(-?\d+(?:\.\d+)?)%", text)
        if not 0 <= float(value) <= 100
    ]
    return found


def test_the_demos_pages_show_its_figures_and_nothing_impossible(tmp_path: Path) -> None:
    """The dashboard and the report over the demo's workspace show the uplift the demo printed,
    the alerts still firing and each version's own registered figure; no None, nan or impossible
    share appears on any page."""
    from steward.monitoring.performance import uplift_between
    from steward.render.weekly import weekly_report

    from .test_web import Api

    told = _RUNS.get("sqlite") or _tell(tmp_path, f"sqlite:///{tmp_path / 'steward.db'}", seed=0)
    steward = Steward.open(told.workspace, database_url=told.database_url)
    try:
        api = Api(steward, steward.events)
        versions = steward.versions("churn")
        paths = ["/", "/ui/systems/churn?range=90d", "/ui/systems/churn/versions"]
        paths += [f"/ui/systems/churn/versions/{version.version}" for version in versions]
        paths += ["/ui/systems/churn/reviews", "/ui/history?system=churn"]
        pages = {path: _page_text(api.request("GET", path).text) for path in paths}
        end = datetime.fromisoformat(told.summary["weeks"][-1]["end"])
        report = weekly_report(steward, steward.events, "churn", at=end)
        pages["report"] = _page_text(report.to_html())
        measured = uplift_between(steward, steward.events, "churn", end - timedelta(days=90), end)
        with steward.store.read() as session:
            firing = session.scalars(
                select(AlertRow.rule).where(AlertRow.resolved_at.is_(None))
            ).all()
    finally:
        steward.close()
    assert {path: _impossible(text) for path, text in pages.items() if _impossible(text)} == {}
    printed = told.summary["uplift"]
    assert not isinstance(measured, str), measured
    assert measured.uplift == pytest.approx(printed["uplift"], abs=1e-12)
    assert measured.summary() in pages["/ui/systems/churn?range=90d"]
    assert measured.summary() in pages["report"]
    assert all(rule in pages["report"] for rule in firing)
    for version in versions:
        own = version.metrics.get("roc_auc")
        assert (
            own is None
            or f"{own:.3f}"[:4] in pages[f"/ui/systems/churn/versions/{version.version}"]
        )


WALL_CLOCK_ACTIONS = ("review.", "identity.", "api.", "login.", "session.", "token.", "events.")


def test_everything_the_demo_writes_is_dated_on_its_one_clock(tmp_path: Path) -> None:
    """Monitors ran on simulated weeks while alias moves, actions and the audit log used the wall
    clock, so twelve weeks of history sat inside one minute."""
    from steward.store import AuditRow

    told = _RUNS.get("sqlite") or _tell(tmp_path, f"sqlite:///{tmp_path / 'steward.db'}", seed=0)
    first = datetime.fromisoformat(told.summary["weeks"][0]["start"]) - timedelta(hours=1)
    last = datetime.fromisoformat(told.summary["weeks"][-1]["end"]) + timedelta(minutes=10)
    steward = Steward.open(told.workspace, database_url=told.database_url)
    try:
        with steward.store.read() as session:
            stamped = {
                "alias moves": [row.moved_at for row in session.scalars(select(AliasMove))],
                "actions": [row.created_at for row in session.scalars(select(ActionRow))],
                "approvals": [row.requested_at for row in session.scalars(select(ApprovalRow))],
                # A review another test approves in the browser happens today; credentials are
                # made and Parquet files rolled on the wall clock (the server checks expiry by it).
                "audit": [
                    row.at
                    for row in session.scalars(select(AuditRow))
                    if not row.action.startswith(WALL_CLOCK_ACTIONS)
                ],
            }
            promotion = session.scalars(
                select(AliasMove).where(AliasMove.alias == "champion", AliasMove.to_version == 2)
            ).one()
    finally:
        steward.close()
    outside = {
        what: [moment for moment in moments if not first <= moment <= last]
        for what, moments in stamped.items()
    }
    assert all(stamped.values()) and outside == {key: [] for key in stamped}
    assert _week_of(told.summary, promotion.moved_at) >= 8  # promoted after the week-7 launch
    assert min(stamped["alias moves"]) < first + timedelta(hours=1)  # v1 released before week 1


def test_the_story_tells_each_alert_once(tmp_path: Path) -> None:
    """The log notifier repeated every alert line the story already prints."""
    told = _RUNS.get("sqlite") or _tell(tmp_path, f"sqlite:///{tmp_path / 'steward.db'}", seed=0)
    assert "alert fired: monitor:drift" in told.output
    assert "[steward] churn:" not in told.output
