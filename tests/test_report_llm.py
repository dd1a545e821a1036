"""The weekly report of an ``llm`` system: its calls against the week before, cost, prompts, evals.

The workspace is built with the library's public functions: calls priced by a ``PriceBook`` that
knows ``house-model`` and not ``garage-model`` and recorded with ``record_calls``; a prompt with two
versions whose ``production`` label moves; eval runs saved with ``save_run``. A few rows are then
dated back into the week before (a label move, an eval run) or stored directly (``llm_outputs``
results), so the report must pick the week's. Every figure is recomputed here from the calls this
file made, with the prices written out, and the report is written by ``steward report --week``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import update

from steward import Steward
from steward.cli.main import cli
from steward.llm.calls import record_calls
from steward.llm.cost import PriceBook
from steward.llm.eval_runs import save_run
from steward.llm.prompt_files import read_prompt
from steward.llm.prompts import move_label, register_prompt
from steward.model.registry import find_system
from steward.render.weekly import week_label, weekly_report
from steward.store import EvalRunRow, MonitorResultRow, PromptLabelMove

PRICED, UNPRICED = "house-model", "garage-model"
RATES = {"input": Decimal("10"), "output": Decimal("40")}  # US$ per million tokens
PRICES = PriceBook(
    {PRICED: [{"valid_from": date(2020, 1, 1), **{k: float(v) for k, v in RATES.items()}}]}
)
REASON = "<script>alert('owned')</script> v2 answers in fewer words"
EVAL_SET = "evals/<b>golden</b>.yaml"
OUTPUT_SUMMARY = "answer v2 on house-model: <img src=x> answer length moved 30 → 90 words"
CONFIG = yaml.safe_dump(
    {"version": 1, "systems": [{"name": "assistant", "task": "llm", "owner": "ana@example.com"}]}
)
PROMPT = "description: Answer a question.\nmodel: {model}\nvariables: [question]\n"
PROMPT += "template: '{{{{ question }}}}'\n"


def make_call(rng: np.random.Generator, index: int, at: datetime, version: int) -> dict[str, Any]:
    """One call: every 5th to the unpriced model, every 7th failed."""
    call: dict[str, Any] = {
        "id": f"call-{index}",
        "event_time": at,
        "prompt": "answer",
        "prompt_version": version,
        "provider": "acme",
        "request_model": UNPRICED if index % 5 == 0 else PRICED,
        "input_tokens": int(rng.integers(300, 3_000)),
        "output_tokens": int(rng.integers(20, 400)),
        "latency_ms": float(rng.uniform(150, 2_500)),
    }
    if index % 7 == 0:
        call["error"] = "timeout: no answer in time"
    return call


def make_calls(at: datetime) -> list[dict[str, Any]]:
    """60 calls in the week ending ``at`` (prompt v2 in its last three days), 30 in the week
    before, and 5 three weeks back, all to the unpriced model."""
    rng = np.random.default_rng(11)
    calls: list[dict[str, Any]] = []
    week_start = at - timedelta(days=7)
    for n in range(60):
        moment = week_start + (timedelta(days=7) - timedelta(hours=2)) * (n + 0.5) / 60
        version = 2 if moment >= at - timedelta(days=3) else 1
        calls.append(make_call(rng, len(calls) + 1, moment, version))
    for n in range(30):
        moment = week_start - timedelta(days=7) * (n + 0.5) / 30
        calls.append(make_call(rng, len(calls) + 1, moment, 1))
    for n in range(5):
        old = make_call(rng, len(calls) + 1, at - timedelta(days=20, hours=n), 1)
        calls.append({**old, "request_model": UNPRICED})
    return calls


def expected_cost(call: dict[str, Any]) -> Decimal | None:
    """The price written out: input and output tokens at their rates; None when unpriced."""
    if call["request_model"] != PRICED:
        return None
    dollars = (call["input_tokens"] * RATES["input"] + call["output_tokens"] * RATES["output"]) / (
        Decimal(1_000_000)
    )
    return dollars.quantize(Decimal("1e-9"))


@dataclass
class Built:
    steward: Steward
    root: Path
    database_url: str
    at: datetime
    calls: list[dict[str, Any]]
    run_id: int

    def between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return [call for call in self.calls if start <= call["event_time"] < end]

    def week(self) -> list[dict[str, Any]]:
        return self.between(self.at - timedelta(days=7), self.at)

    def report(self, tmp_path: Path) -> str:
        """The report as ``steward report assistant --week --at AT`` writes it."""
        output = tmp_path / "report.html"
        base = ["--workspace", str(self.root), "--database-url", self.database_url]
        args = ["report", "assistant", "--week", "--at", self.at.isoformat(), "--output"]
        result = CliRunner().invoke(cli, [*base, *args, str(output)])
        assert result.exit_code == 0, result.output
        return output.read_text(encoding="utf-8")


@pytest.fixture
def built(tmp_path: Path, database_url: str) -> Iterator[Built]:
    root = tmp_path / "ws"
    (root / "prompts").mkdir(parents=True)
    (root / "steward.yaml").write_text(CONFIG)
    steward = Steward.open(root, database_url=database_url, user="ana")
    steward.init()
    steward.apply()
    # The first noon at least an hour ahead: the week's calls then fall on the same hours of the
    # day whenever the tests run, so the days that the charts draw (and a day holding only
    # unpriced calls) do not depend on the clock; what the tests store now falls in the week.
    earliest = datetime.now(UTC) + timedelta(hours=1)
    at = earliest.replace(hour=12, minute=0, second=0, microsecond=0)
    at += timedelta(days=1) if at < earliest else timedelta(0)
    calls = make_calls(at)
    record_calls(steward.events, "assistant", calls, prices=PRICES)
    steward.events.close()
    run_id = store_prompts_and_evals(steward, root, at)
    store_output_results(steward, at)
    yield Built(steward, root, database_url, at, calls, run_id)
    steward.close()


def store_prompts_and_evals(steward: Steward, root: Path, at: datetime) -> int:
    """Two versions of ``answer``; production moved to v1 and a failed run ten days ago, then a
    passed run of v2 and production moved to v2 this week. Returns the passed run's id."""
    path = root / "prompts" / "answer.yaml"
    for model in (PRICED, "house-model-mini"):
        path.write_text(PROMPT.format(model=model))
        register_prompt(steward.store, "assistant", "answer", read_prompt(path), actor="ana")
    move_label(steward.store, "assistant", "answer", "production", 1, actor="ana", reason="first")
    old = save_eval_run(steward, "fail", "old-set.yaml")
    with steward.store.write() as session:
        earlier = at - timedelta(days=10)
        session.execute(update(PromptLabelMove).values(moved_at=earlier))
        session.execute(update(EvalRunRow).where(EvalRunRow.id == old).values(created_at=earlier))
    passed = save_eval_run(steward, "pass", EVAL_SET)
    move_label(steward.store, "assistant", "answer", "production", 2, actor="bob", reason=REASON)
    return passed


def save_eval_run(steward: Steward, decision: str, eval_set: str) -> int:
    gate = {"summary": f"gate {decision}ed: candidate 92% <vs> baseline 88%"}
    return save_run(
        steward.store,
        system="assistant",
        prompt="answer",
        version=2,
        baseline_version=1,
        baseline_label="production",
        eval_set=eval_set,
        eval_set_sha256="0" * 64,
        provider="acme",
        decision=decision,
        summary={"gate": gate},
        result={},
        actor="ci",
    ).id


def store_output_results(steward: Steward, at: datetime) -> None:
    """One ``llm_outputs`` result this week (a breach), one the week before, and a drift result."""
    with steward.store.write() as session:
        system_id = find_system(session, "assistant").id
        for monitor, days, status, summary in (
            ("llm_outputs", 1, "breach", OUTPUT_SUMMARY),
            ("llm_outputs", 8, "ok", "the week before's check"),
            ("drift", 2, "breach", "a drift result that has no place here"),
        ):
            end = at - timedelta(days=days)
            session.add(
                MonitorResultRow(
                    system_id=system_id,
                    monitor=monitor,
                    window_start=end - timedelta(days=1),
                    window_end=end,
                    status=status,
                    summary=summary,
                    details={},
                )
            )


def rows(page: str, table_id: str) -> list[list[str]]:
    """The cells' texts of each body row of the table ``table_id``."""
    table = re.search(rf'<table id="{table_id}">.*?</table>', page, re.S)
    assert table is not None, f"no table #{table_id}"
    body = re.findall(r"<tr[^>]*>(.*?)</tr>", table[0], re.S)[1:]
    return [[text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in body]


def text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def assert_dollars(shown: str, expected: float) -> None:
    """``shown`` is ``$x`` and equals ``expected`` to the digits it shows."""
    assert shown.startswith("$"), shown
    digits = shown[1:].replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    assert abs(float(digits) - expected) <= 0.5 * 10**-decimals + 1e-12, (shown, expected)


def test_the_weeks_calls_cost_latency_and_errors_against_the_week_before(
    built: Built, tmp_path: Path
) -> None:
    page = built.report(tmp_path)
    shown = rows(page, "llm-weeks")
    ends = [built.at - timedelta(days=7), built.at]
    assert [row[0] for row in shown] == [week_label(end) for end in ends]
    for row, end in zip(shown, ends, strict=True):
        calls = built.between(end - timedelta(days=7), end)
        priced = [cost for cost in map(expected_cost, calls) if cost is not None]
        total = float(sum(priced, Decimal(0)))
        latencies = [call["latency_ms"] for call in calls]
        errors = sum(1 for call in calls if call.get("error"))
        assert row[1] == f"{len(calls):,}"
        assert_dollars(row[2], total)
        assert row[3] == str(len(calls) - len(priced)) and len(priced) < len(calls)
        assert_dollars(row[4], total / len(priced))
        assert row[5] == f"{np.percentile(latencies, 95):,.0f} ms"
        assert row[6] == f"{errors / len(calls):.1%} ({errors})"
    week = weekly_report(built.steward, built.steward.events, "assistant", at=built.at)
    assert week.llm is not None
    calls = built.week()
    priced = [cost for cost in map(expected_cost, calls) if cost is not None]
    figures = week.llm.weeks[-1]
    assert figures.cost == pytest.approx(float(sum(priced, Decimal(0))), rel=1e-9)
    assert figures.cost_per_call != pytest.approx((figures.cost or 0) / len(calls), rel=1e-3)


def test_unpriced_calls_are_counted_apart_never_as_zero_dollars(
    built: Built, tmp_path: Path
) -> None:
    page = built.report(tmp_path)
    unpriced = sum(1 for call in built.week() if call["request_model"] == UNPRICED)
    note = re.search(r'<p class="amber" id="unpriced-note">(.*?)</p>', page, re.S)
    assert note is not None and UNPRICED in note[1] and PRICED not in note[1]
    assert text(note[1]).startswith(f"{unpriced} calls this week had no price")
    by_model = {row[1]: row for row in rows(page, "llm-usage")}
    garage = by_model[UNPRICED]
    assert garage[4:6] == ["unpriced", "unpriced"] and "$" not in "".join(garage)
    # A week whose calls were all unpriced: no cost at all, and the chart leaves that day empty.
    all_unpriced = weekly_report(
        built.steward, built.steward.events, "assistant", at=built.at - timedelta(days=14)
    )
    assert all_unpriced.llm is not None
    week = all_unpriced.llm.weeks[-1]
    assert (week.calls, week.unpriced, week.cost, week.cost_per_call) == (5, 5, None, None)
    old_day = (built.at - timedelta(days=20, hours=2)).date()
    assert dict(all_unpriced.llm.daily_cost)[old_day] is None
    figures = rows(all_unpriced.to_html(), "llm-weeks")[-1]
    assert figures[2] == "no priced call" and figures[4] == "–" and "$" not in "".join(figures)


def test_cost_per_day_is_drawn_for_each_day_of_the_week(built: Built, tmp_path: Path) -> None:
    page = built.report(tmp_path)
    chart = re.search(r'<div id="llm-cost-chart">(<svg.*?</svg>)</div>', page, re.S)
    assert chart is not None and "no data in this range" not in chart[1]
    start, last = (built.at - timedelta(days=7)).date(), (built.at - timedelta(seconds=1)).date()
    n_days = (last - start).days + 1
    line = re.search(r'<polyline points="([^"]+)"', chart[1])
    assert line is not None and len(line[1].split()) == n_days
    week = weekly_report(built.steward, built.steward.events, "assistant", at=built.at)
    assert week.llm is not None
    by_day: dict[date, Decimal] = {}
    for call in built.week():
        day = call["event_time"].date()
        by_day[day] = by_day.get(day, Decimal(0)) + (expected_cost(call) or Decimal(0))
    assert [day for day, _ in week.llm.daily_cost] == [
        start + timedelta(days=k) for k in range(n_days)
    ]
    for day, shown in week.llm.daily_cost:
        assert shown == pytest.approx(float(by_day.get(day, Decimal(0))), rel=1e-9), day


def test_cost_per_call_by_prompt_version_and_model(built: Built, tmp_path: Path) -> None:
    page = built.report(tmp_path)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for call in built.week():
        key = (f"answer v{call['prompt_version']}", call["request_model"])
        groups.setdefault(key, []).append(call)
    shown = {(row[0], row[1]): row for row in rows(page, "llm-usage")}
    assert set(shown) == set(groups) and len(groups) == 4
    for key, calls in groups.items():
        row = shown[key]
        assert row[2] == str(len(calls))
        if key[1] == PRICED:
            costs = [expected_cost(call) or Decimal(0) for call in calls]
            assert_dollars(row[4], float(sum(costs, Decimal(0))))
            assert_dollars(row[5], float(sum(costs, Decimal(0))) / len(calls))
        assert row[7] == str(sum(1 for call in calls if call.get("error")))


def test_the_weeks_label_moves_eval_runs_and_output_checks_escaped(
    built: Built, tmp_path: Path
) -> None:
    page = built.report(tmp_path)
    assert "<script" not in page and "<img" not in page and "<b>golden" not in page
    assert "&lt;script&gt;alert(" in page and "&lt;b&gt;golden&lt;/b&gt;" in page
    moves = rows(page, "label-moves")
    assert len(moves) == 1  # the move to v1 was ten days ago
    assert moves[0][1:] == [
        "answer",
        "production",
        f"moved: v1 → v2 (eval run #{built.run_id})",
        "bob",
        REASON,
    ]
    runs = rows(page, "eval-runs")
    assert len(runs) == 1  # the failed run was ten days ago
    assert runs[0][1:] == [
        f"#{built.run_id}",
        "answer v2",
        "v1 (production)",
        EVAL_SET,
        "pass",
        "gate passed: candidate 92% <vs> baseline 88%",
    ]
    checks = rows(page, "output-checks")
    assert [row[1:] for row in checks] == [["breach", OUTPUT_SUMMARY]]


def test_classic_ml_sections_are_skipped_in_one_line(built: Built, tmp_path: Path) -> None:
    page = built.report(tmp_path)
    skipped = re.search(r'<p class="muted" id="classic-skipped">(.*?)</p>', page)
    assert skipped is not None and "ROC AUC" in skipped[1] and "review queue" in skipped[1]
    assert page.count("ROC AUC") == 1 and 'id="weeks"' not in page
    assert "What drifted" not in page and "a drift result" not in page
    assert "uplift vs holdout" not in page and "waiting for review" not in page
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )


def test_a_week_without_calls_or_event_log_says_so(built: Built) -> None:
    quiet = weekly_report(
        built.steward, built.steward.events, "assistant", at=built.at - timedelta(days=60)
    )
    assert quiet.llm is not None and [week.calls for week in quiet.llm.weeks] == [0, 0]
    page = quiet.to_html()
    assert all(row[2] == "–" and row[4] == "–" for row in rows(page, "llm-weeks"))
    assert "No call this week." in page and "No prompt label moved this week." in page
    blind = weekly_report(built.steward, None, "assistant", at=built.at)
    assert blind.llm is not None and blind.llm.weeks == []
    page = blind.to_html()
    assert "Calls not shown: no event log to read the calls from." in page
    assert len(rows(page, "label-moves")) == 1
