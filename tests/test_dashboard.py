"""The dashboard in a real browser: a real `steward serve`, Debian's chromium through playwright.

The workspace is filled with the library's public functions: two registered versions and alias
moves, predictions logged through the server, monitors run and stored, an alert, a playbook action,
a pending approval. Every page is visited with console errors collected (none allowed), a drift
heatmap cell is clicked to show its overlay, a review is approved through the review API, and a
screenshot of each page is saved to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import contextlib
import html
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psycopg
import pytest
import sqlalchemy
import yaml
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy.engine import make_url

from steward import Steward
from steward.data.events import EventLog
from steward.demo import train_churn_model
from steward.model.registry import diff_versions
from steward.monitoring.runner import run_monitors
from steward.render.queries import (
    load_results,
    sampled_ids_of,
    sampled_results_of,
    system_id_of,
)
from steward.render.status import (
    MonitorFact,
    SystemFacts,
    data_state,
    delivery_state,
    governance_state,
    model_state,
    monitoring_state,
)
from steward.store import ActionRow, AlertRow, ApprovalRow, MonitorResultRow, select, utcnow
from steward.web.dashboard.system_page import drift_heatmap, system_context
from tests.conftest import CHROMIUM_ARGS, CONFIG, Server

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"


# --- the surface rules ------------------------------------------------------------------------------

NOW = datetime(2026, 3, 5, 12, tzinfo=UTC)


def _fact(status: str, summary: str = "s", hours_ago: float = 1) -> MonitorFact:
    end = NOW - timedelta(hours=hours_ago)
    return MonitorFact(status, summary, end - timedelta(hours=1), end)


def test_data_surface_follows_the_newest_quality_check() -> None:
    facts = SystemFacts(name="churn", now=NOW, champion=1)
    assert data_state(facts).level == "amber"
    breach = SystemFacts(
        name="churn", now=NOW, champion=1, latest={"data_quality": _fact("breach", "nulls up")}
    )
    assert (data_state(breach).level, data_state(breach).reason) == ("red", "nulls up")
    ok = SystemFacts(name="churn", now=NOW, champion=1, latest={"data_quality": _fact("ok")})
    assert data_state(ok).level == "green"


def test_model_surface_is_red_on_a_performance_breach_and_amber_without_labels() -> None:
    assert model_state(SystemFacts(name="c", now=NOW, champion=None)).level == "red"
    assert model_state(SystemFacts(name="c", now=NOW, champion=2)).level == "amber"
    breach = SystemFacts(
        name="c",
        now=NOW,
        champion=2,
        latest={"performance": _fact("ok"), "estimated_performance": _fact("breach", "est low")},
    )
    assert model_state(breach).reason == "est low"


def test_delivery_surface_says_suspension_and_paging_slo() -> None:
    suspended = SystemFacts(
        name="c", now=NOW, champion=1, suspension=("review", "drift", NOW - timedelta(hours=2))
    )
    state = delivery_state(suspended)
    assert state.level == "amber" and "suspended (review) since Thu 10:00: drift" in state.reason
    paging = SystemFacts(
        name="c", now=NOW, champion=1, open_alerts=(("slo:latency", "page", "firing", "slow"),)
    )
    assert delivery_state(paging).level == "red"


def test_monitoring_surface_names_the_drifted_feature_and_since_when() -> None:
    facts = SystemFacts(
        name="c",
        now=NOW,
        champion=1,
        latest={"drift": _fact("breach")},
        drifted_columns=("tenure",),
        drift_since=datetime(2026, 3, 3, 14, tzinfo=UTC),
    )
    assert monitoring_state(facts).reason == "drift in tenure since Tue 14:00"
    stale = SystemFacts(name="c", now=NOW, champion=1, latest={"drift": _fact("ok", hours_ago=5)})
    assert monitoring_state(stale).level == "amber"
    fresh = SystemFacts(name="c", now=NOW, champion=1, latest={"drift": _fact("ok", hours_ago=1)})
    assert monitoring_state(fresh).level == "green"


def test_a_champion_without_reference_is_never_green() -> None:
    """Registered without --data, drift said "not enough data" and the surface stayed green."""
    bare = _fact(
        "not_enough_data", "no reference: register the champion with --data to keep a sample"
    )
    facts = SystemFacts(name="c", now=NOW, champion=1, latest={"drift": bare})
    state = monitoring_state(facts)
    assert state.level == "amber" and state.reason.startswith("no reference")


def test_governance_surface_counts_what_waits_for_a_person() -> None:
    facts = SystemFacts(name="c", now=NOW, champion=1, pending_reviews=2, pending_approvals=1)
    assert governance_state(facts).reason == "2 reviews and 1 approval pending"
    assert governance_state(SystemFacts(name="c", now=NOW, champion=1)).level == "green"


# --- the system page's reads ------------------------------------------------------------------------

HOUR = timedelta(hours=1)


def _store_results(steward: Steward, rows: list[tuple[str, datetime, str, dict[str, Any]]]) -> None:
    with steward.store.write() as session:
        system_id = system_id_of(session, "churn")
        session.add_all(
            MonitorResultRow(
                system_id=system_id,
                monitor=monitor,
                window_start=end - HOUR,
                window_end=end,
                status=status,
                summary=status,
                details=details,
            )
            for monitor, end, status, details in rows
        )


def _drift(statistic: float) -> dict[str, Any]:
    return {"results": [{"column": "tenure", "method": "ks", "statistic": statistic,
                         "threshold": 0.1, "alarm": statistic > 0.1}]}  # fmt: skip


def _expected_sample(keys: list[tuple[int, str]], limit: int) -> list[int]:
    """The sampling rule written out plainly: ``limit`` groups in window order, each shown by its
    last breach, else its last result."""
    size = -(-len(keys) // limit)
    groups = [keys[offset : offset + size] for offset in range(0, len(keys), size)]
    return [([k for k in group if k[1] == "breach"] or group)[-1][0] for group in groups]


def test_sampled_results_keep_each_groups_last_breach_in_window_order(workspace: Steward) -> None:
    rows = []
    for hour in range(50):  # two results share each window end: the id breaks the tie
        for copy in range(2):
            status = "breach" if (hour * 2 + copy) % 7 == 0 else "ok"
            rows.append(
                ("drift", NOW - (50 - hour) * HOUR, status, _drift(0.02 * copy + hour / 100))
            )
    rows.append(("data_quality", NOW - HOUR, "ok", {"violation_rate": 0.25, "volume": 7}))
    _store_results(workspace, list(reversed(rows)))  # stored newest first: ids against time
    start, end = NOW - 60 * HOUR, NOW
    with workspace.store.read() as session:
        system_id = system_id_of(session, "churn")
        everything = session.scalars(
            select(MonitorResultRow)
            .where(MonitorResultRow.monitor == "drift")
            .order_by(MonitorResultRow.window_end, MonitorResultRow.id)
        ).all()
        keys = [(row.id, row.status) for row in everything]
        picked = sampled_ids_of(
            session, system_id, ["drift", "data_quality", "uplift"], start, end, limits={"drift": 7}
        )
        sampled = sampled_results_of(session, system_id, ["drift", "data_quality"], start, end, 7)
    assert picked["drift"] == _expected_sample(keys, 7) and len(picked["drift"]) == 7
    assert picked["uplift"] == [] and len(picked["data_quality"]) == 1
    stored = {row.id: row for row in everything}
    assert [result.id for result in sampled["drift"]] == picked["drift"]
    for result in sampled["drift"]:
        row = stored[result.id]
        assert (result.window_start, result.window_end, result.status, result.details) == (
            row.window_start, row.window_end, row.status, row.details
        )  # fmt: skip
    assert sampled["data_quality"][0].details == {"violation_rate": 0.25, "volume": 7}


def test_sampling_reads_the_keys_from_the_index_alone_on_sqlite(tmp_path: Path) -> None:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "steward.yaml").write_text(CONFIG)
    steward = Steward.open(root, database_url=f"sqlite:///{tmp_path / 's.db'}", user="t")
    steward.init()
    steward.apply()
    _store_results(steward, [("drift", NOW, "ok", {"results": [], "note": float("nan")})])
    sent: list[tuple[str, Any]] = []

    def note(*arguments: Any) -> None:
        sent.append((arguments[2], arguments[3]))  # the statement and its parameters

    with steward.store.read() as session:
        system_id = system_id_of(session, "churn")
        sqlalchemy.event.listen(steward.store.engine, "before_cursor_execute", note)
        sampled = sampled_results_of(session, system_id, ["drift"], NOW - 2 * HOUR, NOW)
        sqlalchemy.event.remove(steward.store.engine, "before_cursor_execute", note)
        statement, parameters = sent[0]  # the keys of every result in the range
        plan = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        plan_text = " ".join(str(row) for row in plan)
    steward.close()
    assert "COVERING INDEX ix_monitor_results_system_monitor_end_status" in plan_text
    # json.dumps stored a NaN, which orjson refuses: the details still read back.
    assert math.isnan(sampled["drift"][0].details["note"])


def test_a_drawn_heatmap_is_reused_only_for_the_same_stored_results(workspace: Steward) -> None:
    _store_results(workspace, [("drift", NOW - h * HOUR, "ok", _drift(0.05)) for h in range(3)])
    low, high = (NOW - 10 * HOUR).isoformat(), NOW.isoformat()

    def heatmap() -> str:
        with workspace.store.read() as session:
            return system_context(workspace, None, session, "churn", None, low, high)["heatmap"]

    first = heatmap()
    assert heatmap() is first  # the same results: drawn once
    _store_results(workspace, [("drift", NOW - 4 * HOUR, "breach", _drift(0.9))])
    again = heatmap()
    assert again != first and 'class="cell alarm"' in again and 'class="cell alarm"' not in first
    with workspace.store.read() as session:
        ids = sampled_ids_of(
            session, system_id_of(session, "churn"), ["drift"], NOW - 10 * HOUR, NOW
        )
        rows = load_results(session, ids["drift"])
    assert again == drift_heatmap("churn", rows)  # what a fresh draw gives


# --- the pages in a browser ------------------------------------------------------------------------


def _shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """A product launch: longer tenure and higher charges for everyone."""
    shifted = frame.copy()
    shifted["tenure"] = shifted["tenure"] + 40
    shifted["MonthlyCharges"] = shifted["MonthlyCharges"] * 1.8
    return shifted


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {key: (None if pd.isna(value) else value) for key, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    telco: tuple[pd.DataFrame, pd.Series],
    telco_model: object,
) -> Iterator[tuple[Steward, Server]]:
    """A served workspace with two versions, logged predictions, stored monitors and loop rows.

    Module-scoped (one server per backend for all the browser tests): starting `steward serve`
    is the slow part.
    """
    root = tmp_path_factory.mktemp("dashboard") / "workspace"
    root.mkdir()
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{root.parent / 'steward.db'}"
        else:
            url = stack.enter_context(
                _postgres_database(request.getfixturevalue("postgres_server_url"))
            )
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.setenv("STEWARD_LOOP_INTERVAL", "0")  # the test drives the monitors itself
        (root / "steward.yaml").write_text(CONFIG)
        steward = Steward.open(root, database_url=url, user="tester")
        stack.callback(steward.close)
        steward.init()
        running = _fill(steward, telco, telco_model)
        stack.callback(running.close)
        yield steward, running


@contextlib.contextmanager
def _postgres_database(server_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards (as conftest's ``postgres_url``)."""
    server = make_url(server_url)
    name = f"steward_test_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fill(workspace: Steward, telco: tuple[pd.DataFrame, pd.Series], telco_model: object) -> Server:
    frame, target = telco
    config = yaml.safe_load(CONFIG)
    config["systems"][0]["policy"] = {
        "thresholds": [{"at": 0.5, "action": "contact"}],
        "default_action": "none",
        "holdout": 0.1,
        "review_band": [0.45, 0.5],
    }
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    training = workspace.settings.workspace / "training.parquet"
    frame.assign(Churn=target.to_numpy()).to_parquet(training)
    workspace.register_model(telco_model, system="churn", data=training, metrics={"roc_auc": 0.84})
    workspace.move_alias("churn", "champion", 1, reason="first release")
    second = train_churn_model(frame, target, C=0.1)
    workspace.register_model(second, system="churn", data=training, metrics={"roc_auc": 0.85})
    workspace.move_alias("churn", "challenger", 2, reason="retrained")
    running = Server(workspace.settings.workspace, workspace.settings.database_url)
    running.start()
    try:
        sample = frame.sample(600, random_state=1)
        for batch in (sample.iloc[:300], _shifted(sample.iloc[300:])):
            response = httpx.post(
                f"{running.url}/v1/systems/churn/predict",
                json={"records": _records(batch)},
                timeout=60,
            )
            assert response.status_code == 200, response.text
        running.stop()  # rolls the server's segments into Parquet for the monitors to read
        events = EventLog(workspace.settings.events_dir, fsync=False)
        try:
            at = datetime.now(UTC) + timedelta(minutes=1)
            run_monitors(
                workspace, events, "churn", window=timedelta(hours=2), at=at, settle=timedelta(0)
            )
        finally:
            events.close()
        _add_loop_rows(workspace)
        running.start()
    except BaseException:
        running.close()
        raise
    return running


def _add_loop_rows(steward: Steward) -> None:
    """An alert, the playbook's action on it, and a pending promotion approval."""
    with steward.store.write() as session:
        system_id = session.scalar(select(AlertRow.system_id).limit(1)) or 1
        alert = AlertRow(
            system_id=system_id,
            rule="monitor:drift",
            severity="ticket",
            state="firing",
            summary="drift in tenure, MonthlyCharges",
            fired_at=utcnow(),
            last_seen_at=utcnow(),
        )
        session.add(alert)
        session.flush()
        session.add(
            ActionRow(
                system_id=system_id,
                alert_id=alert.id,
                kind="notify",
                status="done",
                reason="drift alert sent to the owner",
                actor="steward",
            )
        )
        session.add(
            ApprovalRow(
                system_id=system_id,
                kind="promote",
                subject={"challenger": 2, "champion": 1},
                reason="v2 beats v1 on the golden set",
                requested_by="steward",
            )
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


class Watched:
    """A page whose console errors and uncaught exceptions are collected."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.base = base
        self.errors: list[str] = []
        self.page: Page = browser.new_page(viewport={"width": 1300, "height": 900})
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def visit(self, path: str, shot: str) -> Page:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == 200, path
        self.page.wait_for_load_state("networkidle")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{shot}.png"), full_page=True)
        return self.page


def test_every_page_renders_without_console_errors(
    filled: tuple[Steward, Server], browser: Browser
) -> None:
    steward, server = filled
    watched = Watched(browser, server.url)

    page = watched.visit("/", "overview")
    row = page.locator('tr[data-system="churn"]')
    assert row.locator('[data-surface="monitoring"]').get_attribute("data-level") == "red"
    assert "drift in" in row.locator('[data-surface="monitoring"]').inner_text()
    assert "1 approval" in row.inner_text()

    page = watched.visit("/ui/systems/churn", "system")
    page.wait_for_function("() => document.querySelectorAll('figure.chart.drawn').length > 0")
    assert page.locator("#volume-chart canvas").count() > 0  # drawn in the browser (uPlot)
    assert page.locator("#heatmap svg rect.cell").count() > 0
    assert page.locator("#heatmap svg rect.cell.alarm").count() > 0
    assert "drift in tenure" in page.locator("text=drift in tenure").first.inner_text()

    page = watched.visit("/ui/systems/churn/versions?a=1&b=2", "versions")
    rows = diff_versions(steward.version("churn", 1), steward.version("churn", 2))
    changed = sum(1 for row in rows if row.changed)
    assert page.locator("#diff tbody tr.changed").count() == changed > 0
    assert page.locator("#diff tbody tr:not(.changed)").count() == 0  # unchanged rows are folded
    assert (
        page.locator("#unchanged summary").inner_text() == f"{len(rows) - changed} unchanged rows"
    )
    assert not page.locator("#unchanged table").is_visible()
    page = watched.visit("/ui/systems/churn/versions/2", "version")
    assert page.frame_locator("iframe.card").locator("text=Intended use").count() > 0

    page = watched.visit("/ui/history?system=churn", "history")
    text = page.locator("#history").inner_text()
    assert "alias.move" in text and "notify: done" in text and "monitor.drift.breach" in text

    assert watched.errors == []


def test_clicking_a_drift_cell_overlays_reference_and_window(
    filled: tuple[Steward, Server], browser: Browser
) -> None:
    _, server = filled
    watched = Watched(browser, server.url)
    page = watched.visit("/ui/systems/churn", "system-before-click")
    page.locator("#heatmap svg rect.cell.alarm").first.click()
    overlay = page.locator("#overlay svg.overlay")
    overlay.wait_for(timeout=10_000)
    legend = page.locator("#overlay").inner_text()
    assert "reference" in legend and "window" in legend
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "drift-overlay.png"), full_page=True)
    assert watched.errors == []


def test_review_queue_approves_a_review_and_a_promotion(
    filled: tuple[Steward, Server], browser: Browser
) -> None:
    steward, server = filled
    watched = Watched(browser, server.url)
    page = watched.visit("/ui/systems/churn/reviews", "reviews")
    rows = page.locator("#reviews > tbody > tr")
    before = rows.count()
    assert before > 0, "the review band should have sent some predictions to review"
    first_id = rows.first.get_attribute("data-id")
    rows.first.locator("button.approve-review").click()
    page.locator("#review-message.ok").wait_for(timeout=10_000)
    assert rows.count() == before - 1
    listed = httpx.get(f"{server.url}/v1/systems/churn/reviews", timeout=30).json()
    pending = (
        listed.get("reviews", listed.get("items", listed)) if isinstance(listed, dict) else listed
    )
    assert first_id not in {item["id"] for item in pending}

    approval = page.locator("#approvals > tbody > tr").first
    approval_id = approval.get_attribute("data-id")
    approval.locator("button.approve-approval").click()
    page.locator("#review-message.ok", has_text=f"Approved #{approval_id}.").wait_for(
        timeout=10_000
    )
    assert page.locator("#approvals > tbody > tr").count() == 0
    assert steward.version("churn", "champion").version == 2
    page.screenshot(path=str(SCREENSHOTS / "reviews-after.png"), full_page=True)
    assert watched.errors == []


def test_unknown_system_is_a_404_page_not_a_500(filled: tuple[Steward, Server]) -> None:
    _, server = filled
    response = httpx.get(f"{server.url}/ui/systems/nope", timeout=30)
    assert response.status_code == 404
    assert "unknown system 'nope'" in html.unescape(response.text) and "<html" in response.text


def _pending(server: Server) -> list[dict[str, Any]]:
    listed = httpx.get(f"{server.url}/v1/systems/churn/reviews?limit=10000", timeout=30).json()
    return list(listed["reviews"])


def test_review_queue_pages_filters_counts_and_approves_in_bulk(
    filled: tuple[Steward, Server], browser: Browser
) -> None:
    _, server = filled
    pending = _pending(server)
    n = len(pending)
    assert n > 10, f"the review band should leave more than a page of 10 waiting, got {n}"
    watched = Watched(browser, server.url)
    page = watched.visit("/ui/systems/churn/reviews?size=10", "reviews-page-1")
    assert page.locator("#review-count").inner_text() == f"Showing 1–10 of {n} waiting."
    assert page.locator("#reviews > tbody > tr").count() == 10
    assert [r.get_attribute("data-id") for r in page.locator("#reviews > tbody > tr").all()] == [
        item["id"] for item in pending[:10]
    ]  # oldest first, as the API lists them

    page.locator("#review-pages a[rel=next]").click()
    page.wait_for_load_state("networkidle")
    assert "page=2" in page.url
    assert page.locator("#review-count").inner_text() == f"Showing 11–{min(20, n)} of {n} waiting."

    actions = sorted({item["intended_action"] for item in pending if item["intended_action"]})
    chosen = actions[0]
    page.select_option("#review-filters select[name=action]", chosen)
    page.locator("#review-filters button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    matching = [item for item in pending if item["intended_action"] == chosen]
    count = page.locator("#review-count").inner_text()
    shown = min(10, len(matching))
    expected = f"Showing {1 if matching else 0}–{shown} of {len(matching)} waiting"
    assert count.startswith(expected), count
    if len(matching) != n:
        assert count.endswith(f"that match (of {n} in all).")
    proposed = page.locator("#reviews > tbody > tr > td:nth-child(6)").all_inner_texts()
    assert proposed and set(proposed) == {chosen}

    page = watched.visit("/ui/systems/churn/reviews?size=10", "reviews-bulk")
    page.locator("#select-all-reviews").check()
    page.locator("#approve-selected").click()
    page.locator("#review-message.ok", has_text="Approved 10 selected.").wait_for(timeout=30_000)
    assert len(_pending(server)) == n - 10
    assert watched.errors == []
