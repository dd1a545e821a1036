"""The dashboard's prompt pages: prompts, one version with its diff, one eval run.

The workspace is built with the library's public functions: an ``llm`` system whose prompt answers
through the ``echo`` provider (the answer is the rendered prompt, so each case's verdict is known
from the prompt text) and whose ``llm-rubric`` assertions are graded by the fake LLM server in
``steward.testing``, set to flip a coin (a judge that disagrees with itself). Version 2 adds a
``<script>`` to the prompt: the pages must show it as text. Pages are called in process (httpx
ASGI transport), and the eval run page once in Debian's chromium over a real ``steward serve``.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import sync_playwright

from steward import Steward
from steward.data.events import EventLog
from steward.llm import eval_runs, prompts
from steward.llm.evaluate import run_gate
from steward.testing import FakeLLMServer
from steward.web import create_app
from steward.web.dashboard.prompts_page import (
    VERDICT_COLORS,
    CaseRow,
    case_strip_svg,
    pass_rates_svg,
)
from tests.conftest import CHROMIUM_ARGS, Server

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"

PROMPT_V1 = """\
description: Answer a support question.
provider: echo
model: fake-model
variables: [question]
messages:
  - role: system
    content: You answer support questions. Be brief.
  - role: user
    content: "{{ question }}"
"""

PROMPT_V2 = PROMPT_V1.replace(
    "Be brief.", "Be brief and kind. <script>alert('owned')</script>"
).replace("variables:", "parameters: {temperature: 0}\nvariables:")

RUBRIC_CASES = ["polite-1", "polite-2", "polite-3", "polite-4"]


def eval_set() -> str:
    cases: list[dict[str, Any]] = [
        {
            "id": "brief",
            "vars": {"question": "Where is my parcel?"},
            "assert": [{"type": "contains", "value": "brief"}],
        },
        {
            "id": "kind",  # v1 fails it, v2 passes it: better
            "vars": {"question": "Why is my bill high?"},
            "assert": [{"type": "icontains", "value": "kind"}],
        },
        {
            "id": "no-markup",  # v1 passes it, v2 fails it: worse, and critical
            "critical": True,
            "vars": {"question": "How do I <b>reset</b> my router?"},
            "assert": [{"type": "not-contains", "value": "<script>"}],
        },
    ]
    cases += [
        {
            "id": name,
            "vars": {"question": f"Can I pause my plan? ({name})"},
            "assert": [{"type": "llm-rubric", "value": "The reply is polite"}],
        }
        for name in RUBRIC_CASES
    ]
    return yaml.safe_dump({"cases": cases})


def config(base_url: str) -> str:
    return yaml.safe_dump(
        {
            "version": 1,
            "systems": [
                {
                    "name": "support",
                    "task": "llm",
                    "owner": "support@example.com",
                    "providers": {"fake": {"kind": "openai", "base_url": base_url}},
                    "judge": {"provider": "fake", "model": "fake-judge", "repeats": 3},
                    "prompts": [
                        {"name": "answer", "file": "prompts/answer.yaml", "evals": "evals.yaml"}
                    ],
                },
                {"name": "churn", "task": "binary", "owner": "ana@example.com"},
            ],
        }
    )


class Built:
    """The workspace, its two eval runs, and the app in process."""

    def __init__(self, steward: Steward, events: EventLog, first: int, second: int) -> None:
        self.steward = steward
        self.first = eval_runs.get_run(steward.store, first)
        self.second = eval_runs.get_run(steward.store, second)
        self.app = create_app(steward, events=events, insecure_local=True)

    def get(self, path: str) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:
                return await client.get(path)

        return asyncio.run(send())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """v1 passes its gate (no baseline) and takes ``production``; v2 fails against it."""
    root = tmp_path_factory.mktemp("prompt-pages") / "ws"
    (root / "prompts").mkdir(parents=True)
    prompt_file = root / "prompts" / "answer.yaml"
    with FakeLLMServer(seed=11, judge="random") as fake:
        (root / "steward.yaml").write_text(config(fake.base_url))
        (root / "evals.yaml").write_text(eval_set())
        prompt_file.write_text(PROMPT_V1)
        steward = Steward.open(root, database_url=f"sqlite:///{root / 'store.db'}", user="alice")
        steward.init()
        steward.apply()
        first = _gate(steward, 1)
        prompts.move_label(
            steward.store, "support", "answer", "production", 1, actor="alice", reason="launch"
        )
        prompt_file.write_text(PROMPT_V2)
        steward.apply()
        second = _gate(steward, 2)
    events = EventLog(root.parent / "events")
    built = Built(steward, events, first, second)
    yield built
    built.app.state.service.close()
    events.close()
    steward.close()


def _gate(steward: Steward, version: int) -> int:
    outcome = run_gate(
        steward.store,
        steward.system("support").declared,
        "answer",
        base_dir=steward.settings.config_path.parent,
        actor="alice",
        candidate=version,
        against="production",
    )
    return outcome.run.id


def _rows(page: str, table_id: str) -> list[str]:
    """The ``<tr>`` elements of one table, as HTML."""
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page, re.S)
    assert table is not None, f"no table #{table_id}"
    return re.findall(r"<tr[^>]*>.*?</tr>", table[0], re.S)


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


# --- the prompts page -------------------------------------------------------------------------------


def test_prompts_page_lists_versions_newest_first_with_labels_history_and_runs(
    built: Built,
) -> None:
    response = built.get("/ui/systems/support/prompts")
    assert response.status_code == 200, response.text
    page = response.text
    versions = [row for row in _rows(page, "versions-answer") if "data-version" in row]
    assert [re.search(r'data-version="(\d+)"', row)[1] for row in versions] == ["2", "1"]  # type: ignore[index]
    newest, oldest = versions
    assert hashlib.sha256(PROMPT_V2.encode()).hexdigest()[:12] in newest
    assert hashlib.sha256(PROMPT_V1.encode()).hexdigest()[:12] in oldest
    assert "fake-model" in oldest and "alice" in oldest
    assert '<span class="tag label">production</span>' in oldest
    assert "production" not in newest
    # The label history: the move cites the passing run of v1, with its reason.
    history = re.search(r'<table class="label-history"[^>]*>.*?</table>', page, re.S)
    assert history is not None
    move = _text(history[0])
    assert "production" in move and "launch" in move and "alice" in move
    assert f'href="/ui/evals/{built.first.id}"' in history[0]
    # Both eval runs are linked from the prompt page, with their decisions.
    for run in (built.first, built.second):
        assert f'href="/ui/evals/{run.id}"' in page
    assert '<span class="decision fail">fail</span>' in page
    assert '<span class="decision pass">pass</span>' in page


def test_the_system_page_of_an_llm_system_links_to_its_prompts(built: Built) -> None:
    llm = built.get("/ui/systems/support")
    assert llm.status_code == 200, llm.text[:500]
    assert 'href="/ui/systems/support/prompts"' in llm.text
    binary = built.get("/ui/systems/churn")
    assert binary.status_code == 200
    assert "/prompts" not in binary.text


# --- one version and its diff -----------------------------------------------------------------------


def test_a_prompt_with_a_script_tag_is_shown_as_text(built: Built) -> None:
    page = built.get("/ui/systems/support/prompts/answer/versions/2").text
    assert "<script>alert" not in page
    source = re.search(r'<pre class="source" id="source">(.*?)</pre>', page, re.S)
    assert source is not None and html.unescape(source[1]) == PROMPT_V2
    assert "&lt;script&gt;alert(" in page


def _diff(page: str) -> dict[str, list[str]]:
    """The text of the diff's lines by kind (add, del, context), markers and numbers left out."""
    marked: dict[str, list[str]] = {"add": [], "del": [], "context": []}
    for row in _rows(page, "diff"):
        kind = re.match(r'<tr class="(\w+)"', row)
        code = re.search(r'<td class="code"><span class="marker">.?</span>(.*?)</td>', row, re.S)
        if kind and code and kind[1] in marked:
            marked[kind[1]].append(html.unescape(code[1]))
    return marked


def test_the_diff_marks_added_and_removed_lines(built: Built) -> None:
    old, new = PROMPT_V1.splitlines(), PROMPT_V2.splitlines()
    page = built.get("/ui/systems/support/prompts/answer/versions/2").text  # default: against v1
    marked = _diff(page)
    assert marked["add"] == [line for line in new if line not in old]
    assert marked["del"] == [line for line in old if line not in new]
    assert marked["context"] and all(line in old and line in new for line in marked["context"])
    assert page.count('<tr class="add">') == len(marked["add"])
    # The other way round, chosen with ?against=: what was added is now removed.
    back = _diff(built.get("/ui/systems/support/prompts/answer/versions/1?against=2").text)
    assert back["del"] == marked["add"] and back["add"] == marked["del"]


def test_the_first_version_and_a_version_against_itself_have_no_diff(built: Built) -> None:
    first = built.get("/ui/systems/support/prompts/answer/versions/1").text
    assert 'id="no-diff"' in first and "first version" in first and 'id="diff"' not in first
    same = built.get("/ui/systems/support/prompts/answer/versions/2?against=2").text
    assert "have the same text" in same
    by_label = built.get("/ui/systems/support/prompts/answer/versions/production")
    assert by_label.status_code == 200 and "answer</a> v1" in by_label.text


def test_the_version_page_links_the_runs_of_that_version(built: Built) -> None:
    page = built.get("/ui/systems/support/prompts/answer/versions/2").text
    runs = _text(" ".join(_rows(page, "eval-runs")))
    assert f"#{built.second.id}" in runs
    # v1 was the candidate of the first run and the baseline of the second.
    first = _text(
        " ".join(
            _rows(built.get("/ui/systems/support/prompts/answer/versions/1").text, "eval-runs")
        )
    )
    assert f"#{built.first.id}" in first and f"#{built.second.id}" in first


# --- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/ui/systems/nope/prompts", "unknown system 'nope'"),
        ("/ui/systems/support/prompts/anwser/versions/1", "has no prompt 'anwser'"),
        ("/ui/systems/support/prompts/answer/versions/9", "has no version 9"),
        ("/ui/systems/support/prompts/answer/versions/staging", "no version at label 'staging'"),
        ("/ui/systems/support/prompts/answer/versions/1?against=7", "has no version 7"),
        ("/ui/evals/999", "no eval run #999"),
        ("/ui/evals/abc", "no eval run 'abc'"),
        ("/ui/evals/%3Cscript%3E", "no eval run '<script>'"),
    ],
)
def test_unknown_names_versions_and_runs_are_404_pages(
    built: Built, path: str, message: str
) -> None:
    response = built.get(path)
    assert response.status_code == 404, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text and message in html.unescape(response.text)
    assert "<script>" not in response.text


# --- the eval run page -------------------------------------------------------------------------------


def _stored_cases(run: eval_runs.EvalRun, side: str) -> dict[str, dict[str, Any]]:
    return {case["case_id"]: case for case in (run.result[side] or {}).get("cases", [])}


def _expected_verdict(case: dict[str, Any]) -> str:
    return {True: "pass", False: "fail", None: "skipped"}[case["passed"]]


def test_the_eval_run_page_shows_the_decision_both_sides_and_every_case(built: Built) -> None:
    run = built.second
    response = built.get(f"/ui/evals/{run.id}")
    assert response.status_code == 200, response.text[:500]
    page = response.text
    assert '<p class="banner red" id="decision"><b>fail</b>' in page
    assert "critical case(s) failed: no-markup" in _text(page)

    new, old = _stored_cases(run, "candidate"), _stored_cases(run, "baseline")
    rows = {
        found[1]: row
        for row in _rows(page, "cases")
        if (found := re.search(r'data-case="([^"]+)"', row))
    }
    assert set(rows) == set(new)
    known = {"brief": ("pass", "pass"), "kind": ("fail", "pass"), "no-markup": ("pass", "fail")}
    for case_id, row in rows.items():
        verdicts = re.findall(r'<span class="verdict [\w-]+">([\w ]+)</span>', row)
        expected = known.get(case_id) or (
            _expected_verdict(old[case_id]),
            _expected_verdict(new[case_id]),
        )
        assert tuple(verdicts) == expected, case_id
    assert 'class="worse"' in rows["no-markup"] and "critical</span>" in rows["no-markup"]
    assert 'class="better"' in rows["kind"] and "critical</span>" not in rows["kind"]
    assert "not-contains" in rows["no-markup"] and "<details>" in rows["no-markup"]
    # The answers are shown as text: the question's markup and the prompt's script escaped.
    assert "&lt;b&gt;reset&lt;/b&gt;" in rows["no-markup"] and "<b>reset</b>" not in page

    # Pass rates side by side, counted here from the stored verdicts.
    figures = _rows(page, "figures")
    rate_row = _text(next(row for row in figures if "pass rate" in row))
    for cases in (old, new):
        verdicts = [case["passed"] for case in cases.values() if case["passed"] is not None]
        assert f"{sum(verdicts) / len(verdicts):.1%}" in rate_row
    tokens = _text(next(row for row in figures if "output tokens" in row))
    spent = sum(case["completion"]["output_tokens"] for case in new.values())
    assert f"{spent:,d}" in tokens


def test_an_inconsistent_judge_is_warned_about(built: Built) -> None:
    for run in (built.first, built.second):
        page = built.get(f"/ui/evals/{run.id}").text
        for side in ("candidate", "baseline"):
            judged = [
                item["repeats"]
                for case in _stored_cases(run, side).values()
                for item in case["assertions"]
                if len(item.get("repeats") or []) >= 2
            ]
            if not judged:
                continue
            unanimity = sum(len(set(repeats)) == 1 for repeats in judged) / len(judged)
            warned = f"The judge disagreed with itself on the {side}" in page
            assert warned == (unanimity < 0.9), (run.id, side, unanimity)
    # A coin-flipping judge over four cases, three asks each, is not unanimous enough.
    assert "judge-warning" in built.get(f"/ui/evals/{built.second.id}").text


# --- the SVG figures ---------------------------------------------------------------------------------


def test_the_case_strip_colours_each_side_by_its_verdict() -> None:
    rows = [
        CaseRow(1, "a", "", False, "pass", "pass"),
        CaseRow(2, "b", "", True, "pass", "fail"),
        CaseRow(3, "c <x>", "", False, "skipped", "error"),
    ]
    svg = case_strip_svg(rows)
    fills = re.findall(r'<rect class="cell [\w-]+" [^>]*fill="(#\w+)"', svg)
    expected = [VERDICT_COLORS[v] for row in rows for v in (row.baseline, row.candidate)]
    assert fills == expected
    assert svg.count('class="worse"') == 1  # only b went from pass to fail
    assert svg.count("<circle") == 1  # b is critical
    assert "c &lt;x&gt;" in svg and "c <x>" not in svg
    assert case_strip_svg(rows, with_baseline=False).count('class="cell') == len(rows)
    many = case_strip_svg([CaseRow(i, str(i), "", False, "pass", "pass") for i in range(1, 121)])
    assert many.count('class="cell') == 240 and many.count(">baseline</text>") == 3  # 3 lines


def test_pass_rate_bars_share_one_scale() -> None:
    svg = pass_rates_svg([("baseline", 1.0), ("candidate", 0.25)])
    widths = [float(w) for w in re.findall(r'<rect class="rate" [^>]*width="([\d.]+)"', svg)]
    assert len(widths) == 2 and widths[1] == pytest.approx(widths[0] / 4, abs=0.1)


# --- in a browser ------------------------------------------------------------------------------------


def test_the_eval_run_page_draws_in_chromium(built: Built) -> None:
    root = built.steward.settings.workspace
    server = Server(root, built.steward.settings.database_url)
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
            response = page.goto(f"{server.url}/ui/evals/{built.second.id}")
            assert response is not None and response.status == 200
            page.wait_for_load_state("networkidle")
            n_cases = len(_stored_cases(built.second, "candidate"))
            strip = page.locator("#strip svg")
            assert strip.is_visible() and strip.bounding_box()["width"] > 100  # type: ignore[index]
            assert page.locator("#strip svg rect.cell").count() == 2 * n_cases
            assert page.locator("#rates svg rect.rate").count() == 2
            assert page.locator("#cases").is_visible()
            assert page.locator("#cases > tbody > tr").count() == n_cases
            row = page.locator('#cases tr[data-case="no-markup"]')
            output = row.locator("pre.output").first
            assert not output.is_visible()
            row.locator("summary").click()
            assert output.is_visible() and "<b>reset</b>" in output.inner_text()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "eval-run.png"), full_page=True)
            for path, shot in (
                ("/ui/systems/support/prompts", "prompts"),
                ("/ui/systems/support/prompts/answer/versions/2", "prompt-version"),
            ):
                visited = page.goto(server.url + path)
                assert visited is not None and visited.status == 200
                page.screenshot(path=str(SCREENSHOTS / f"{shot}.png"), full_page=True)
            browser.close()
    finally:
        server.close()
    assert errors == []
