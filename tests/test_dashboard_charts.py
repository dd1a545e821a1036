"""The system page's client-drawn charts, the time picker and the feature pages, in a real browser.

A served workspace holds five days of predictions (the last two shifted) that ended 8 days ago, and
one drift and data-quality result per day, stored by the real monitors: so the last 7 days hold
nothing and the page must reach back by itself. Debian's chromium (playwright) visits the pages
with every request to anything but the server aborted and console errors collected (none
allowed); each test saves a screenshot under ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from playwright.sync_api import Browser, Page, Route, sync_playwright

from steward import Steward
from steward.data.events import EventLog
from steward.errors import InvalidInputError
from steward.monitoring.fairness import fairness_verdict
from steward.monitoring.runner import run_monitors
from steward.render.queries import system_id_of
from steward.store import MonitorResultRow, select, utcnow
from steward.web import create_app
from steward.web.dashboard.chartdata import embed_json
from steward.web.dashboard.timerange import PRESETS, choose_range, parse_moment
from steward.workspace.config import FairnessConfig
from tests.conftest import CHROMIUM_ARGS, CONFIG, Server

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
DAYS = 5
#: The predictions end this long before now: more than the default 7 days.
QUIET = timedelta(days=8)


# --- the range and the embedded data, without a browser ---------------------------------------------


def test_a_range_with_nothing_in_the_last_week_reaches_back_to_the_latest_activity() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    for days_ago, expected in [(2, "7d"), (20, "30d"), (31, "90d"), (100, "365d")]:
        latest = now - timedelta(days=days_ago)
        chosen = choose_range(None, None, None, now=now, latest=latest)
        assert chosen.key == expected and chosen.start < latest <= chosen.end
        assert (chosen.note == "") == (expected == "7d")
    old = now - timedelta(days=500)
    chosen = choose_range(None, None, None, now=now, latest=old)
    assert chosen.start < old < chosen.end and not chosen.preset
    assert chosen.note.startswith("Showing the 7 days up to the latest activity")


def test_a_custom_range_reads_both_spellings_and_refuses_nonsense() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    dotted = choose_range("2026-01-01..2026-02-01T12:00", None, None, now=now, latest=None)
    picked = choose_range(None, "2026-01-01", "2026-02-01T12:00", now=now, latest=None)
    assert dotted == picked
    assert (dotted.start, dotted.end) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 2, 1, 12, tzinfo=UTC),
    )
    assert parse_moment("2026-01-01T10:00+02:00", "from") == datetime(2026, 1, 1, 8, tzinfo=UTC)
    for bad, words in [
        ("bogus", "neither a preset"),
        ("2026-02-01..2026-01-01", "ends before it starts"),
        ("2020-01-01..2026-01-01", "at most 400 days"),
        ("yesterday..today", "not an ISO date"),
    ]:
        with pytest.raises(InvalidInputError, match=words):
            choose_range(bad, None, None, now=now, latest=None)
    with pytest.raises(InvalidInputError, match="needs both from and to"):
        choose_range(None, "2026-01-01", None, now=now, latest=None)


def test_embedded_chart_data_cannot_close_its_script_tag() -> None:
    hostile = {"name": "</script><script>alert(1)</script>", "x": "a & b\u2028"}
    text = str(embed_json(hostile))
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == hostile


# --- a served workspace with a week of stored results ending 8 days ago ---------------------------


def _records(frame: pd.DataFrame, start: datetime) -> list[dict[str, Any]]:
    spacing = timedelta(days=1) / (len(frame) + 1)
    records = []
    for index, row in enumerate(frame.to_dict(orient="records")):
        record = {key: (None if pd.isna(value) else value) for key, value in row.items()}
        record["event_time"] = (start + spacing * (index + 1)).isoformat()
        records.append(record)
    return records


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    telco: tuple[pd.DataFrame, pd.Series],
    telco_model: object,
) -> Iterator[tuple[Steward, Server, datetime]]:
    """Five days of predictions ending ``QUIET`` ago, monitored day by day, served."""
    frame, target = telco
    root = tmp_path_factory.mktemp("charts") / "workspace"
    root.mkdir()
    first_day = (datetime.now(UTC) - QUIET - timedelta(days=DAYS)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    with contextlib.ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.setenv("STEWARD_LOOP_INTERVAL", "0")  # the test runs the monitors itself
        config = yaml.safe_load(CONFIG)
        config["systems"][0]["policy"] = {"thresholds": [{"at": 0.5, "action": "contact"}]}
        (root / "steward.yaml").write_text(yaml.safe_dump(config))
        steward = Steward.open(root, database_url=f"sqlite:///{root.parent / 's.db'}", user="t")
        stack.callback(steward.close)
        steward.init()
        steward.apply()
        training = root / "training.parquet"
        frame.assign(Churn=target.to_numpy()).to_parquet(training)
        steward.register_model(telco_model, system="churn", data=training)
        steward.move_alias("churn", "champion", 1, reason="first release")
        running = Server(root, steward.settings.database_url)
        stack.callback(running.close)
        running.start()
        for day in range(DAYS):
            batch = frame.sample(150, random_state=day)
            if day >= DAYS - 2:  # a launch: longer tenure, higher charges
                batch = batch.assign(
                    tenure=batch["tenure"] + 40, MonthlyCharges=batch["MonthlyCharges"] * 1.8
                )
            answer = httpx.post(
                f"{running.url}/v1/systems/churn/predict",
                json={"records": _records(batch, first_day + timedelta(days=day))},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
        running.stop()  # rolls the segments into Parquet for the monitors
        with EventLog(steward.settings.events_dir, fsync=False) as events:
            for day in range(1, DAYS + 1):
                at = first_day + timedelta(days=day)
                run_monitors(
                    steward, events, "churn", window=timedelta(days=1), at=at, settle=timedelta(0)
                )
        running.start()
        yield steward, running, first_day


def _stored(steward: Steward, monitor: str) -> list[MonitorResultRow]:
    with steward.store.read() as session:
        rows = session.scalars(
            select(MonitorResultRow)
            .where(MonitorResultRow.monitor == monitor)
            .order_by(MonitorResultRow.window_end)
        ).all()
        session.expunge_all()
    return list(rows)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


class Visit:
    """A page that may reach the served workspace only, its console errors collected."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.base = base
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.page: Page = browser.new_page(viewport={"width": 1300, "height": 900})
        self.page.route("**/*", self._guard)
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _guard(self, route: Route) -> None:
        if route.request.url.startswith(self.base):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def open(self, path: str) -> Page:
        answer = self.page.goto(self.base + path)
        assert answer is not None and answer.status == 200, path
        self.settle()
        return self.page

    def settle(self) -> None:
        self.page.wait_for_load_state("networkidle")
        self.page.wait_for_function(
            "() => document.querySelectorAll('figure.chart.drawn').length"
            " === document.querySelectorAll('figure.chart .chart-plot').length"
        )

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def range(self) -> dict[str, str]:
        box = self.page.locator("#page-range")
        return {key: box.get_attribute(f"data-{key}") or "" for key in ("start", "end", "key")}

    def clean(self) -> None:
        assert self.errors == [] and self.blocked == []


def _url_range(url: str) -> str:
    return parse_qs(urlparse(url).query)["range"][0]


def test_the_default_range_reaches_back_to_the_latest_results(
    served: tuple[Steward, Server, datetime], browser: Browser
) -> None:
    steward, server, _ = served
    latest = max(row.window_end for row in _stored(steward, "drift")).replace(tzinfo=UTC)
    now = datetime.now(UTC)
    expected = next(key for key, span in PRESETS.items() if now - span < latest)
    assert expected != "7d"
    visit = Visit(browser, server.url)
    page = visit.open("/ui/systems/churn")
    assert visit.range()["key"] == expected
    note = page.locator("#range-note").inner_text()
    assert note.startswith(f"Showing {PRESETS[expected].days} days: the latest activity is ")
    assert f"{latest:%d %b %Y %H:%M} UTC" in note
    assert page.locator("#heatmap svg rect.cell.alarm").count() > 0
    assert page.locator("figure.chart.drawn canvas").count() >= 2  # volume, violations, aliases
    visit.shot("charts-system-default")
    visit.clean()


def test_the_pages_forbid_inline_scripts(served: tuple[Steward, Server, datetime]) -> None:
    _, server, _ = served
    answer = httpx.get(f"{server.url}/ui/systems/churn?range=30d", timeout=30)
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", answer.text, flags=re.S)
    assert scripts and all(
        'src="/ui/static/' in attributes or 'type="application/json"' in attributes
        for attributes, _ in scripts
    )


def _hover(page: Page, chart: str, index: int) -> str:
    """Move the mouse over the time of point ``index`` of ``chart`` (the cursor takes the nearest
    point in time); the legend's value of the first series."""
    page.locator(f"#{chart} .u-over").scroll_into_view_if_needed()
    where = page.evaluate(
        """([id, index]) => {
            const chart = window.stewardCharts.find((c) => c.id === id);
            const plot = chart.plot, x = chart.xs[index];
            const box = plot.over.getBoundingClientRect();
            return {x: box.left + plot.valToPos(x, "x"), y: box.top + box.height / 2};
        }""",
        [chart, index],
    )
    page.mouse.move(where["x"], where["y"])
    value = page.locator(f"#{chart} .u-legend .u-series:nth-child(2) .u-value")
    return value.inner_text()


def test_hovering_a_point_shows_its_stored_value(
    served: tuple[Steward, Server, datetime], browser: Browser
) -> None:
    steward, server, _ = served
    visit = Visit(browser, server.url)
    page = visit.open("/ui/systems/churn/features/tenure?range=30d")
    rows = [row for row in _stored(steward, "drift")]
    chart = page.evaluate(
        "() => window.stewardCharts.find((c) => c.id.startsWith('statistic-')).id"
    )
    method = chart.removeprefix("statistic-")
    assert page.locator(f"#{chart} .u-legend .u-series:nth-child(2) .u-label").inner_text() == (
        f"{method} statistic"
    )
    stored = [
        next(
            item["statistic"]
            for item in row.details["results"]
            if item["column"] == "tenure" and item["method"] == method
        )
        for row in rows
    ]
    for index in (0, len(rows) - 1):
        shown = _hover(page, chart, index)
        assert float(shown) == pytest.approx(stored[index], rel=1e-3), (index, shown)
    time_text = page.locator(f"#{chart} .u-legend .u-series:first-child .u-value")
    assert time_text.inner_text() == f"{rows[-1].window_end:%Y-%m-%d %H:%M} UTC"
    visit.shot("charts-feature-hover")

    page = visit.open("/ui/systems/churn?range=30d")
    quality = _stored(steward, "data_quality")
    shown = _hover(page, "quality-chart", 1)
    assert shown == f"{quality[1].details['violation_rate'] * 100:.2f}%"
    visit.clean()


def test_dragging_across_a_chart_zooms_and_a_reload_keeps_the_range(
    served: tuple[Steward, Server, datetime], browser: Browser
) -> None:
    _, server, first_day = served
    visit = Visit(browser, server.url)
    page = visit.open("/ui/systems/churn?range=30d")
    page.locator("#quality-chart .u-over").scroll_into_view_if_needed()
    box = page.locator("#quality-chart .u-over").bounding_box()
    assert box is not None
    low, high = (
        page.evaluate(
            """([day]) => {
                const plot = window.stewardCharts.find((c) => c.id === 'quality-chart').plot;
                return plot.valToPos(day, "x");
            }""",
            [(first_day + timedelta(days=offset)).timestamp()],
        )
        for offset in (0.5, 4.5)
    )
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + low, y)
    page.mouse.down()
    page.mouse.move(box["x"] + (low + high) / 2, y, steps=4)
    page.mouse.move(box["x"] + high, y, steps=4)
    page.mouse.up()
    page.wait_for_function("() => new URL(location.href).searchParams.get('range') !== '30d'")
    zoomed = _url_range(page.url)
    start_text, _, end_text = zoomed.partition("..")
    start, end = parse_moment(start_text, "from"), parse_moment(end_text, "to")
    expected_start = first_day + timedelta(days=0.5)
    assert abs((start - expected_start).total_seconds()) < 3600
    assert abs((end - (first_day + timedelta(days=4.5))).total_seconds()) < 3600
    scale = page.evaluate(
        "() => { const s = window.stewardCharts[0].plot.scales.x; return [s.min, s.max]; }"
    )
    assert scale == [start.timestamp(), end.timestamp()]
    assert page.locator("#zoom-note").is_visible()
    visit.shot("charts-zoomed")

    page.reload()
    visit.settle()
    assert visit.range() == {
        "start": str(int(start.timestamp())),
        "end": str(int(end.timestamp())),
        "key": zoomed,
    }
    assert page.locator("#range-from").inner_text() == f"{start:%d %b %Y %H:%M}"
    windows = page.evaluate(
        "() => window.stewardCharts.find((c) => c.id === 'quality-chart').xs.length"
    )
    assert windows == sum(
        1 for offset in range(1, DAYS + 1) if start < first_day + timedelta(days=offset) <= end
    )

    page.locator("#quality-chart .u-over").dblclick()
    page.wait_for_function(f"() => new URL(location.href).searchParams.get('range') === '{zoomed}'")
    visit.shot("charts-zoom-reset")
    visit.clean()


def test_the_picker_and_the_url_set_the_range(
    served: tuple[Steward, Server, datetime], browser: Browser
) -> None:
    _, server, first_day = served
    visit = Visit(browser, server.url)
    page = visit.open("/ui/systems/churn?range=30d")
    page.locator('#range-presets button[value="90d"]').click()
    visit.settle()
    assert _url_range(page.url) == "90d" and visit.range()["key"] == "90d"
    span = int(visit.range()["end"]) - int(visit.range()["start"])
    assert span == PRESETS["90d"].total_seconds()

    low, high = first_day + timedelta(days=1), first_day + timedelta(days=3)
    page.fill('#range-custom input[name="from"]', f"{low:%Y-%m-%dT%H:%M}")
    page.fill('#range-custom input[name="to"]', f"{high:%Y-%m-%dT%H:%M}")
    page.locator('#range-custom button[type="submit"]').click()
    visit.settle()
    assert visit.range()["start"] == str(int(low.timestamp()))
    assert visit.range()["end"] == str(int(high.timestamp()))
    visit.shot("charts-picker-custom")

    page = visit.open(f"/ui/systems/churn?range={low:%Y-%m-%d}..{high:%Y-%m-%d}")
    assert visit.range()["key"] == f"{low:%Y-%m-%dT00:00}..{high:%Y-%m-%dT00:00}"
    # day 2's and day 3's results end inside (low, high]
    assert (
        page.evaluate("() => window.stewardCharts.find((c) => c.id === 'quality-chart').xs.length")
        == 2
    )

    answer = httpx.get(f"{server.url}/ui/systems/churn?range=2026-02-30..2026-03-01", timeout=30)
    assert answer.status_code == 422 and "not an ISO date or time" in answer.text
    visit.clean()


def test_a_feature_page_opens_from_the_heatmap_with_both_distributions(
    served: tuple[Steward, Server, datetime], browser: Browser
) -> None:
    _, server, _ = served
    visit = Visit(browser, server.url)
    page = visit.open("/ui/systems/churn?range=30d")
    page.locator("#heatmap svg a.row-link", has_text="tenure").first.click()
    visit.settle()
    assert urlparse(page.url).path == "/ui/systems/churn/features/tenure"
    assert page.locator("#feature-name").inner_text() == "tenure"
    assert page.locator("#window-distribution svg.overlay").count() == 1
    assert page.locator("#range-distribution svg.overlay").count() == 1
    assert page.locator("#windows tbody tr").count() >= DAYS
    assert "alarm" in page.locator("#windows tbody tr").first.inner_text()  # the shifted days
    oldest = page.locator("#windows button.show-window").last
    start = datetime.fromisoformat(oldest.get_attribute("data-start") or "")
    oldest.click()
    page.locator("#window-distribution h3", has_text=f"{start:%d %b %H:%M} to").wait_for()
    assert page.locator("#window-distribution svg.overlay").count() == 1
    visit.shot("charts-feature")
    answer = httpx.get(f"{server.url}/ui/systems/churn/features/nope?range=30d", timeout=30)
    assert answer.status_code == 404 and "tenure" in answer.text
    visit.clean()


def test_the_history_filter_submits_without_an_inline_handler(
    served: tuple[Steward, Server, datetime], browser: Browser
) -> None:
    """The page's policy refuses inline handlers: the select submits through dashboard.js."""
    _, server, _ = served
    visit = Visit(browser, server.url)
    page = visit.open("/ui/history")
    assert page.locator("[onchange], [onclick]").count() == 0
    with page.expect_navigation():
        page.select_option("select[name=system]", "churn")
    assert parse_qs(urlparse(page.url).query)["system"] == ["churn"]
    visit.clean()


# --- the fairness panel ------------------------------------------------------------------------------


def _get(workspace: Steward, tmp_path: Path, path: str) -> httpx.Response:
    """One page from the app in process (no server needed for a page without script)."""

    async def fetch() -> httpx.Response:
        with EventLog(tmp_path / "events") as events:
            app = create_app(workspace, events=events, insecure_local=True)
            try:
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://localhost"
                ) as client:
                    return await client.get(path)
            finally:
                app.state.service.close()

    # A thread of its own: playwright's loop may be running in this one (the browser fixture).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, fetch()).result()


def test_the_fairness_panel_shows_rates_gaps_and_small_groups(
    workspace: Steward, tmp_path: Path
) -> None:
    """A stored result of the real fairness verdict: rates per group as pandas computes them, each
    gap with its interval, and "not enough data" for a group under ``min_group_size``."""

    fairness = {"attributes": ["gender", "SeniorCitizen"], "max_gap": 0.1, "min_group_size": 30}
    config = yaml.safe_load(CONFIG)
    config["systems"][0]["fairness"] = fairness
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    rng = np.random.default_rng(3)
    n = 400
    gender = np.where(np.arange(n) % 2 == 0, "Female", "Male")
    senior = np.where(np.arange(n) < 12, 1, 0)  # 12 seniors: under 30, not compared
    score = np.clip(rng.normal(np.where(gender == "Male", 0.6, 0.4), 0.2), 0, 1)
    outcome = (rng.random(n) < 0.4).astype(int)
    labeled = pd.DataFrame(
        {
            "inputs": [
                {"gender": g, "SeniorCitizen": int(s)} for g, s in zip(gender, senior, strict=True)
            ],
            "score": score,
            "outcome_value": outcome,
        }
    )
    status, summary, details = fairness_verdict(labeled, FairnessConfig(**fairness), 0.5)
    end = utcnow()
    with workspace.store.write() as session:
        system_id = system_id_of(session, "churn")
        session.add(
            MonitorResultRow(
                system_id=system_id,
                monitor="fairness",
                window_start=end - timedelta(days=1),
                window_end=end,
                status=status,
                summary=summary,
                details=details,
            )
        )

    answer = _get(workspace, tmp_path, "/ui/systems/churn?range=1d")
    assert answer.status_code == 200, answer.text
    text = answer.text
    panel = text[text.index('<section id="fairness">') :]
    panel = panel[: panel.index("</section>")]
    decided = score >= 0.5
    for group in ("Female", "Male"):
        rate = decided[gender == group].mean()
        row = re.search(rf'<tr data-group="{group}">(.*?)</tr>', panel, flags=re.S)
        assert row is not None and f"<td>{(gender == group).sum()}</td>" in row[1]
        assert f"<td>{rate * 100:.1f}%</td>" in row[1]
    small = re.search(r'<tr data-group="1">(.*?)</tr>', panel, flags=re.S)
    assert small is not None and "not enough data (under 30 labeled rows)" in small[1]
    gap = details["attributes"]["gender"]["gaps"]["demographic_parity_difference"]
    assert f"{gap['value']:.3f}" in panel and f"{gap['low']:.3f} to {gap['high']:.3f}" in panel
    assert "at most 0.1" in panel
