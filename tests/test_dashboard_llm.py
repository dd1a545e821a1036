"""The dashboard's LLM page: an llm system's calls, cost, latency, errors and output monitor.

The workspace is built with the library's public functions: calls are priced by a ``PriceBook``
that knows ``house-model`` and not ``garage-model``, recorded with ``record_calls`` into the
workspace's own event log, and judged by the registered ``llm_outputs`` monitor through
``run_monitors`` (the newest day's answers are three times longer, so it alarms). Every figure the
page shows is recomputed here from the calls this file made, with the prices written out. Pages
are called in process (httpx ASGI transport), and once in Debian's chromium over ``steward serve``.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from playwright.sync_api import sync_playwright

from steward import Steward
from steward.llm.calls import record_calls
from steward.llm.cost import PriceBook
from steward.model.registry import find_system
from steward.monitoring.result import MonitorResult
from steward.monitoring.runner import run_monitors
from steward.store import MonitorResultRow
from steward.web import create_app
from steward.web.dashboard.llm_page import OUTPUT_WINDOWS, format_dollars, output_grid
from tests.conftest import CHROMIUM_ARGS, Server

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"

PRICED, UNPRICED = "house-model", "garage-model"
RATES = {"input": Decimal("1.0"), "cached_input": Decimal("0.25"), "output": Decimal("4.0")}
PRICES = PriceBook(
    {PRICED: [{"valid_from": date(2020, 1, 1), **{k: float(v) for k, v in RATES.items()}}]}
)
SCRIPT = "<script>alert('owned')</script> Your parcel left the depot."
WORDS = ("your", "parcel", "refund", "arrives", "soon", "thanks", "order", "support", "today")

CONFIG = yaml.safe_dump(
    {
        "version": 1,
        "systems": [
            {"name": "assistant", "task": "llm", "owner": "ana@example.com"},
            {"name": "scribe", "task": "llm", "owner": "ana@example.com"},
            {"name": "churn", "task": "binary", "owner": "ana@example.com"},
        ],
    }
)


def make_call(
    rng: np.random.Generator, index: int, at: datetime, now: datetime, longer: float = 1.0
) -> dict[str, Any]:
    """One call: every 6th to the unpriced model, every 13th failed, the others answered;
    prompt version 2 in the last ten days, 1 before."""
    input_tokens = int(rng.integers(200, 1_200))
    call: dict[str, Any] = {
        "id": f"call-{index}",
        "event_time": at,
        "prompt": "answer",
        "prompt_version": 2 if at > now - timedelta(days=10) else 1,
        "provider": "acme",
        "request_model": UNPRICED if index % 6 == 0 else PRICED,
        "input_tokens": input_tokens,
        "cache_read_tokens": int(rng.integers(0, input_tokens // 2)),
    }
    if index % 13 == 0:
        call.update(error="timeout: no answer in time", latency_ms=float(rng.uniform(900, 4_000)))
        return call
    output_tokens = int(rng.integers(20, 120) * longer)
    call.update(
        output_tokens=output_tokens,
        finish_reasons=["length" if index % 9 == 0 else "stop"],
        latency_ms=float(200 + 6 * output_tokens + rng.normal(0, 40) ** 2),
        output_text=" ".join(str(w) for w in rng.choice(WORDS, size=output_tokens)),
    )
    return call


def make_calls(now: datetime, anchor: datetime) -> list[dict[str, Any]]:
    """120 calls in each of the three days before ``anchor`` (the last day's answers 3x longer),
    90 spread over days 4 to 25 ago, 8 from 40 to 50 days ago, and the newest with markup."""
    rng = np.random.default_rng(7)
    calls: list[dict[str, Any]] = []
    for day in range(3):
        begins = anchor - timedelta(days=3 - day)
        for n in range(120):
            at = begins + timedelta(days=1) * (n + 0.5) / 120
            calls.append(make_call(rng, len(calls) + 1, at, now, 3.0 if day == 2 else 1.0))
    for n in range(90):
        calls.append(make_call(rng, len(calls) + 1, now - timedelta(days=4 + 21 * n / 90), now))
    for n in range(8):
        calls.append(make_call(rng, len(calls) + 1, now - timedelta(days=40 + n), now))
    newest = make_call(rng, 1_000, now - timedelta(minutes=5), now)
    newest.update(
        request_model=PRICED, error=None, output_text=SCRIPT, output_tokens=12, latency_ms=400.0
    )
    return [*calls, newest]


def expected_cost(call: dict[str, Any]) -> Decimal | None:
    """The price written out: uncached input, cached input and output at their rates."""
    if call["request_model"] != PRICED:
        return None
    cached = call["cache_read_tokens"]
    dollars = (
        (call["input_tokens"] - cached) * RATES["input"]
        + cached * RATES["cached_input"]
        + call.get("output_tokens", 0) * RATES["output"]
    ) / Decimal(1_000_000)
    return dollars.quantize(Decimal("1e-9"))


@dataclass
class Built:
    steward: Steward
    calls: list[dict[str, Any]]
    now: datetime
    outputs: list[MonitorResult]
    app: Any = None

    def get(self, path: str) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:
                return await client.get(path)

        return asyncio.run(send())

    def within(self, days: int) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["event_time"] > self.now - timedelta(days=days)]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("llm-page") / "ws"
    root.mkdir()
    (root / "steward.yaml").write_text(CONFIG)
    steward = Steward.open(root, database_url=f"sqlite:///{root / 'store.db'}", user="alice")
    steward.init()
    steward.apply()
    now = datetime.now(UTC)
    anchor = now.replace(minute=0, second=0, microsecond=0)
    calls = make_calls(now, anchor)
    stored = record_calls(steward.events, "assistant", calls, prices=PRICES)
    assert {event["priced"] for event in stored if event["request_model"] == UNPRICED} == {False}
    outputs = []
    for end in (anchor - timedelta(days=1), anchor):
        found = run_monitors(steward, steward.events, "assistant", window=timedelta(days=1), at=end)
        outputs += [result for result in found if result.monitor == "llm_outputs"]
    store_odd_results(steward, anchor)
    steward.events.close()  # rolled into Parquet, for the server the browser test starts
    built = Built(steward, calls, now, outputs)
    built.app = create_app(steward, insecure_local=True)
    yield built
    built.app.state.service.close()
    steward.close()


def store_odd_results(steward: Steward, anchor: datetime) -> None:
    """Results of another shape for ``scribe``: the page must list them, not fail on them."""
    odd = [
        ({}, "ok", "nothing to say"),
        ({"descriptors": ["not", "a", "mapping"], "results": "nope", "group": 7}, "ok", "odd"),
        ({"alarmed_descriptors": ["refused"], "group": "all calls"}, "breach", "refusals <up>"),
    ]
    with steward.store.write() as session:
        system_id = find_system(session, "scribe").id
        for hours, (details, status, summary) in enumerate(odd):
            end = anchor - timedelta(hours=2 - hours)
            session.add(
                MonitorResultRow(
                    system_id=system_id,
                    monitor="llm_outputs",
                    window_start=end - timedelta(hours=1),
                    window_end=end,
                    status=status,
                    summary=summary,
                    details=details,
                    created_at=anchor,
                )
            )


def figures(page: str) -> dict[str, tuple[str, str, str]]:
    """Headline figures by key: (CSS classes, data-value, shown text)."""
    found = re.findall(
        r'<div class="figure ?([\w ]*)" id="figure-(\w+)" data-value="([^"]*)">'
        r'<span class="label">[^<]*</span><span class="value">([^<]*)</span>',
        page,
    )
    return {key: (css, value, html.unescape(text)) for css, key, value, text in found}


def rows(page: str, table_id: str) -> list[str]:
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page, re.S)
    assert table is not None, f"no table #{table_id}"
    return re.findall(r"<tr[^>]*>.*?</tr>", table[0], re.S)[1:]  # without the header


def text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def dollars(shown: str) -> float:
    assert shown.startswith("$"), shown
    return float(shown[1:].replace(",", ""))


# --- the headline ------------------------------------------------------------------------------


@pytest.mark.parametrize(("range_key", "days"), [("", 7), ("?range=90d", 90), ("?range=30d", 30)])
def test_headline_figures_match_the_calls_of_the_range(
    built: Built, range_key: str, days: int
) -> None:
    response = built.get(f"/ui/systems/assistant/llm{range_key}")
    assert response.status_code == 200, response.text[:500]
    shown = figures(response.text)
    calls = built.within(days)
    costs = [expected_cost(call) for call in calls]
    priced = [cost for cost in costs if cost is not None]
    total = float(sum(priced, Decimal(0)))
    latencies = [call["latency_ms"] for call in calls]
    errors = sum(1 for call in calls if call.get("error"))

    assert int(shown["calls"][1]) == len(calls) and shown["calls"][2] == f"{len(calls):,}"
    assert float(shown["cost"][1]) == pytest.approx(total, rel=1e-9)
    assert dollars(shown["cost"][2]) == pytest.approx(total, rel=1e-3)
    assert int(shown["unpriced"][1]) == len(calls) - len(priced) > 0
    per_call = float(shown["cost_per_call"][1])
    assert per_call == pytest.approx(total / len(priced), rel=1e-9)
    assert per_call != pytest.approx(total / len(calls), rel=1e-3)  # unpriced calls are not $0
    assert float(shown["latency_p95"][1]) == pytest.approx(np.percentile(latencies, 95))
    assert shown["latency_p95"][2] == f"{np.percentile(latencies, 95):,.0f} ms"
    assert float(shown["error_rate"][1]) == pytest.approx(errors / len(calls))
    assert shown["error_rate"][2] == f"{errors / len(calls):.1%}"


def test_unpriced_calls_are_shown_in_amber_never_as_zero_dollars(built: Built) -> None:
    page = built.get("/ui/systems/assistant/llm?range=30d").text
    css, value, shown = figures(page)["unpriced"]
    assert "amber" in css and shown == f"{int(value):,}"
    block = re.search(r'id="figure-unpriced".*?</div>', page, re.S)
    assert block is not None and "steward.yaml" in block[0]
    note = re.search(r'<p class="banner amber" id="unpriced-note">(.*?)</p>', page, re.S)
    assert note is not None and UNPRICED in note[1] and PRICED not in note[1]
    n_unpriced = sum(1 for call in built.within(30) if call["request_model"] == UNPRICED)
    assert int(value) == n_unpriced and note[1].startswith(f"{n_unpriced:,} call(s) have no price")
    # The model table: the unpriced model has no cost at all, not $0.
    by_model = {text(re.search(r"<td>(.*?)</td>", row)[1]): row for row in rows(page, "by-model")}  # type: ignore[index]
    assert set(by_model) == {PRICED, UNPRICED}
    garage = by_model[UNPRICED]
    assert "$" not in text(garage) and "unpriced" in text(garage)
    expected = float(sum((c for c in map(expected_cost, built.within(30)) if c), Decimal(0)))
    house_cost = re.search(r'<td class="cost">(.*?)</td>', by_model[PRICED])
    assert house_cost is not None and dollars(text(house_cost[1])) == pytest.approx(
        expected, rel=1e-3
    )
    # The newest calls: each unpriced one says so, and no cost cell reads $0.
    listed = rows(page, "calls")
    for row in listed:
        cost = text(re.search(r'<td class="cost">(.*?)</td>', row, re.S)[1])  # type: ignore[index]
        if UNPRICED in row:
            assert cost == "unpriced", row
        else:
            assert dollars(cost) > 0, row


def test_an_unknown_range_is_refused_naming_it(built: Built) -> None:
    response = built.get("/ui/systems/assistant/llm?range=forever")
    assert response.status_code == 422
    assert "range &#39;forever&#39; is neither a preset" in response.text


def test_a_custom_range_shows_the_calls_between_its_bounds(built: Built) -> None:
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=10)
    query = f"?from={start:%Y-%m-%dT%H:%M}&to={end + timedelta(minutes=1):%Y-%m-%dT%H:%M}"
    page = built.get(f"/ui/systems/assistant/llm{query}").text
    low = start.replace(second=0)
    expected = [c for c in built.calls if low < c["event_time"] <= end + timedelta(minutes=1)]
    assert int(figures(page)["calls"][1]) == len(expected) > 0
    assert "(custom)" in page


# --- tables and charts -------------------------------------------------------------------------


def test_usage_by_prompt_version_counts_each_versions_calls(built: Built) -> None:
    page = built.get("/ui/systems/assistant/llm?range=90d").text
    counted: dict[str, int] = {}
    for call in built.within(90):
        key = f"answer v{call['prompt_version']}"
        counted[key] = counted.get(key, 0) + 1
    table = {}
    for row in rows(page, "by-prompt"):
        cells = [text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        table[cells[0]] = int(cells[1].replace(",", ""))
    assert table == counted


def test_charts_draw_one_point_per_day_of_the_range(built: Built) -> None:
    page = built.get("/ui/systems/assistant/llm?range=7d").text
    payloads = {}
    for name in ("cost", "calls", "latency", "errors"):
        found = re.search(
            rf'<figure class="chart" id="chart-{name}".*?<script type="application/json" '
            rf'class="chart-data">(.*?)</script>',
            page,
            re.S,
        )
        assert found is not None, name
        payloads[name] = json.loads(found[1])
        assert payloads[name]["series"], name  # a series with data, drawn in the browser
        assert "<polyline" in page.split(f'id="chart-{name}"')[1].split("</figure>")[0]  # noscript
    (calls, *_) = payloads["calls"]["series"]
    assert len(calls["points"]) == 8  # 7 days and today, UTC
    per_day: dict[str, int] = {}
    for call in built.within(7):
        day = call["event_time"].astimezone(UTC).date().isoformat()
        per_day[day] = per_day.get(day, 0) + 1
    drawn = {
        datetime.fromtimestamp(x, UTC).date().isoformat(): y for x, y, *_ in calls["points"] if y
    }
    assert sum(drawn.values()) == int(figures(page)["calls"][1])  # every call of the range, once
    first = min(per_day)  # the range's first day is cut at its start: compare the whole days
    assert {d: n for d, n in drawn.items() if d > first} == {
        d: n for d, n in per_day.items() if d > first
    }
    assert payloads["errors"]["kind"] == "share" and payloads["errors"]["y_range"] == [0.0, 1.0]


def test_the_newest_fifty_calls_are_listed_newest_first(built: Built) -> None:
    page = built.get("/ui/systems/assistant/llm").text
    listed = rows(page, "calls")
    newest = sorted(built.within(30), key=lambda call: call["event_time"], reverse=True)[:50]
    assert len(listed) == 50
    for row, call in zip(listed, newest, strict=True):
        cells = [text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        assert cells[0] == call["event_time"].strftime("%Y-%m-%d %H:%M:%S")
        assert cells[1] == f"answer v{call['prompt_version']}"
        assert cells[2] == call["request_model"]
        assert cells[3:6] == [
            f"{call['input_tokens']:,}",
            f"{call['cache_read_tokens']:,}",
            f"{call.get('output_tokens', 0):,}",
        ]
        if call.get("error"):
            assert call["error"] in cells[8] and "<details>" not in row
        else:
            assert cells[8].startswith(call["finish_reasons"][0]) and "<details>" in row


def test_output_text_with_a_script_is_shown_as_text(built: Built) -> None:
    page = built.get("/ui/systems/assistant/llm").text
    assert "<script>alert" not in page
    outputs = re.findall(r'<pre class="output">(.*?)</pre>', page, re.S)
    assert html.unescape(outputs[0]) == SCRIPT  # the newest call
    assert "&lt;script&gt;alert(" in outputs[0]


# --- the output monitor ------------------------------------------------------------------------


def test_the_output_grid_reds_exactly_the_stored_alarms(built: Built) -> None:
    assert len(built.outputs) == 2  # one window a day, all calls judged together
    newest = max(built.outputs, key=lambda result: result.window_end)
    assert "output_tokens" in newest.details["alarmed_descriptors"], newest.summary
    page = built.get("/ui/systems/assistant/llm").text
    table = re.search(r'<table class="outputs" id="output-grid">.*?</table>', page, re.S)
    assert table is not None
    titles = re.findall(r'<th class="small[^"]*" title="([^"]+)"', table[0])
    ends = [datetime.fromisoformat(title.split(" to ")[1].rsplit(": ", 1)[0]) for title in titles]
    assert ends == sorted(result.window_end for result in built.outputs)
    by_end = {result.window_end: result for result in built.outputs}
    red: dict[datetime, set[str]] = {end: set() for end in ends}
    names = []
    for row in rows(table[0], "output-grid"):
        name = re.search(r'data-descriptor="([^"]+)"', row)
        assert name is not None
        names.append(name[1])
        states = re.findall(r'<td class="cell (\w+)"', row)
        assert len(states) == len(ends)
        for end, state in zip(ends, states, strict=True):
            if state == "alarm":
                red[end].add(name[1])
    assert set(names) == set(newest.details["descriptors"])
    for end in ends:
        assert red[end] == set(by_end[end].details["alarmed_descriptors"])
    listed = text(" ".join(rows(page, "output-results")))
    assert newest.summary in listed


def test_results_of_another_shape_are_listed_generically(built: Built) -> None:
    response = built.get("/ui/systems/scribe/llm")
    assert response.status_code == 200, response.text[:500]
    page = response.text
    assert 'id="no-calls"' in page
    listed = [text(row) for row in rows(page, "output-results")]
    assert len(listed) == 3
    assert "refusals <up>" in listed[0] and "breach" in listed[0]  # newest first, escaped
    assert "refusals &lt;up&gt;" in page
    grid = rows(page, "output-grid")
    assert len(grid) == 1 and 'data-descriptor="refused"' in grid[0]
    assert re.findall(r'<td class="cell (\w+)"', grid[0]) == ["none", "none", "alarm"]


def grouped_result(
    ident: int, end: datetime, version: int, current: dict[str, float], alarm: bool
) -> MonitorResultRow:
    """A stored result of one group (prompt version) whose finish reasons moved from 90% stop."""
    return MonitorResultRow(
        id=ident,
        monitor="llm_outputs",
        window_start=end - timedelta(hours=1),
        window_end=end,
        status="breach" if alarm else "ok",
        summary=f"v{version}",
        details={
            "group": {"prompt": "answer", "prompt_version": version, "model": "m"},
            "alarmed_descriptors": ["finish_reason"] if alarm else [],
            "descriptors": {
                "finish_reason": {
                    "kind": "categorical",
                    "reference": {"stop": 0.9, "length": 0.1},
                    "current": current,
                    "alarm": alarm,
                }
            },
        },
    )


def test_a_window_judged_per_group_alarms_when_any_group_did() -> None:
    end = datetime(2026, 12, 1, tzinfo=UTC)
    moved = {"stop": 0.7, "length": 0.2, "content_filter": 0.1}  # stop moved most: 20 points
    grid = output_grid(
        [
            grouped_result(1, end, 1, {"stop": 0.9, "length": 0.1}, alarm=False),
            grouped_result(2, end, 2, moved, alarm=True),
        ]
    )
    assert grid is not None and [status for _, _, status in grid.windows] == ["breach"]
    ((name, (cell,)),) = grid.rows
    assert name == "finish_reason" and cell.state == "alarm" and cell.text == "1/2 groups"
    assert "answer v2 on m: stop 90% → 70% (alarm)" in cell.title
    assert "answer v1 on m: stop 90% → 90%" in cell.title
    assert [line.group for line in grid.lines] == ["answer v2 on m", "answer v1 on m"]


def test_the_grid_keeps_the_newest_windows() -> None:
    end = datetime(2026, 12, 1, tzinfo=UTC)
    results = [
        grouped_result(n, end - timedelta(hours=n), 1, {"stop": 0.6}, alarm=n == 0)
        for n in range(OUTPUT_WINDOWS + 3)
    ]
    grid = output_grid(results)
    assert grid is not None
    kept = [window_end for _, window_end, _ in grid.windows]
    assert kept == sorted(r.window_end for r in results)[-OUTPUT_WINDOWS:]
    ((_, cells),) = grid.rows
    assert [cell.state for cell in cells] == ["ok"] * (OUTPUT_WINDOWS - 1) + ["alarm"]
    assert cells[-1].text == "stop 60%"  # the category that moved most (length fell 10 points)
    assert output_grid([]) is None


def test_small_costs_keep_their_digits() -> None:
    for value in (3e-9, 0.000_123_4, 0.051, 2.5, 12_345.678):
        shown = format_dollars(value)
        assert dollars(shown) == pytest.approx(value, rel=5e-3), shown
    assert format_dollars(None) == "–"


# --- links and errors --------------------------------------------------------------------------


def test_the_system_and_prompts_pages_link_to_the_llm_page(built: Built) -> None:
    # assistant's system page holds a stored data-quality result with no null rates (it has no
    # predictions): the page shows it rather than failing on the missing key.
    pages = (("scribe", ""), ("assistant", ""), ("assistant", "/prompts"), ("scribe", "/prompts"))
    for name, path in pages:
        response = built.get(f"/ui/systems/{name}{path}")
        assert response.status_code == 200, (name, path)
        assert f'href="/ui/systems/{name}/llm"' in response.text, (name, path)
    churn = built.get("/ui/systems/churn")
    assert churn.status_code == 200 and "/llm" not in churn.text


def test_a_system_of_another_task_gets_a_note(built: Built) -> None:
    response = built.get("/ui/systems/churn/llm")
    assert response.status_code == 200
    assert 'id="not-llm"' in response.text and "binary system" in response.text
    assert 'id="headline"' not in response.text


def test_an_unknown_system_is_a_404_page(built: Built) -> None:
    response = built.get("/ui/systems/nope/llm")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "unknown system 'nope'" in html.unescape(response.text)


# --- in a browser ------------------------------------------------------------------------------


def test_the_llm_page_draws_in_chromium(built: Built) -> None:
    server = Server(built.steward.settings.workspace, built.steward.settings.database_url)
    server.start()
    errors: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            response = page.goto(f"{server.url}/ui/systems/assistant/llm")
            assert response is not None and response.status == 200
            page.wait_for_load_state("networkidle")
            for name in ("cost", "calls", "latency", "errors"):  # drawn by uPlot, on a canvas
                chart = page.locator(f"#chart-{name} .chart-plot canvas")
                chart.wait_for(state="visible")
                assert chart.bounding_box()["width"] > 200  # type: ignore[index]
                assert page.locator(f"#chart-{name} .u-legend").count() == 1, name
            assert page.locator("#calls > tbody > tr").count() == 50
            assert page.locator("#output-grid td.cell.alarm").count() >= 1
            output = page.locator("#calls pre.output").first
            assert not output.is_visible()
            page.locator("#calls summary").first.click()
            assert output.is_visible() and output.inner_text() == SCRIPT
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "llm.png"), full_page=True)
            browser.close()
    finally:
        server.close()
    assert errors == []
