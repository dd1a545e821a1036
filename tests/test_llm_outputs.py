"""The LLM output monitor: answers described like features, alarming through the drift rule.

Calls come from the shipped fake LLM's engine (``steward.testing.FakeLLM``, no HTTP), are priced and
recorded with ``steward.llm.calls.record_calls`` into a real ``EventLog``, and are judged by the
registered monitor over a real workspace's ``llm`` system.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from steward import Steward
from steward.data.events import EventLog
from steward.errors import ConfigError, InvalidInputError
from steward.llm.calls import TextPolicy, record_calls
from steward.llm.cost import PriceBook
from steward.llm.descriptors import DEFAULT_REFUSALS, describe_calls, finish_reason
from steward.monitoring.llm_outputs import LLMOutputMonitor, OutputSettings, output_results
from steward.monitoring.monitors import available_monitors
from steward.monitoring.result import MIN_ROWS, MonitorResult
from steward.monitoring.runner import run_monitors
from steward.monitoring.window import MonitorWindow
from steward.testing import FakeLLM
from steward.testing.answers import REFUSAL
from steward.testing.protocol import ChatBody, FakeAPIError

START = datetime(2026, 11, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
RATES = {"input": 1.0, "output": 4.0}  # dollars per million tokens
PRICES = PriceBook({"house-model": [{"valid_from": date(2026, 1, 1), **RATES}]})
TOPICS = (
    "refunds", "annual plans", "parcel delivery", "password resets", "invoices",
    "the free trial", "shipping fees", "account deletion",
)  # fmt: skip
ASKS = (
    "How do {topic} work?",
    "Explain {topic} for a new customer.",
    "What should I know about {topic}?",
    "Why did {topic} change this month?",
    "Can you help me with {topic}, please?",
)
#: The fake's behaviour when nothing changes: a few refusals and errors, so every descriptor lives.
BASE_KNOBS = {"refusal_rate": 0.02, "error_rate": 0.02}
KEYWORDS = ["refunds", "context"]


CONFIG = yaml.safe_dump(
    {
        "version": 1,
        "systems": [{"name": "churn", "task": "binary"}, {"name": "assistant", "task": "llm"}],
    }
)


@pytest.fixture
def steward(tmp_path: Path) -> Iterator[Steward]:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "steward.yaml").write_text(CONFIG)
    opened = Steward.open(root, user="llm-test")
    opened.init()
    opened.apply()
    yield opened
    opened.close()


@pytest.fixture
def events(tmp_path: Path) -> Iterator[EventLog]:
    with EventLog(tmp_path / "events") as log:
        yield log


def simulate(
    seed: int,
    n_calls: int,
    start: datetime,
    length: timedelta = HOUR,
    *,
    prompt_version: int = 1,
    json_answers: bool = False,
    **knobs: Any,
) -> list[dict[str, Any]]:
    """``n_calls`` support questions answered by the fake LLM over ``[start, start + length)``."""
    fake = FakeLLM(seed=seed, **{**BASE_KNOBS, **knobs})
    rng = np.random.default_rng(seed)
    calls = []
    for index in range(n_calls):
        question = str(rng.choice(ASKS)).format(topic=rng.choice(TOPICS))
        question += f" (ticket {rng.integers(1_000_000)})"
        body = ChatBody(
            model="house-model",
            messages=[{"role": "user", "content": question}],
            max_tokens=80,
            response_format="json_object" if json_answers else "text",
        )
        call: dict[str, Any] = {
            "id": f"{seed}-{prompt_version}-{index}",
            "event_time": start + length * index / n_calls,
            "prompt": "support-answer",
            "prompt_version": prompt_version,
            "provider": "acme",
            "request_model": "house-model",
            "input_text": question,
        }
        try:
            answer = fake.chat(body)
        except FakeAPIError as error:
            call.update(error=f"{error.kind}: {error}", latency_ms=rng.lognormal(np.log(80), 0.3))
        else:
            tokens = answer.usage.completion
            call.update(
                input_tokens=answer.usage.prompt,
                output_tokens=tokens,
                finish_reasons=[answer.finish_reason],
                # The network's share of the latency: longer answers take longer.
                latency_ms=rng.lognormal(np.log(300 + 12 * tokens), 0.3),
                output_text=answer.content,
            )
        calls.append(call)
    return calls


def record(events: EventLog, calls: list[dict[str, Any]], text: TextPolicy = "keep") -> None:
    for first in range(0, len(calls), 10_000):
        record_calls(events, "assistant", calls[first : first + 10_000], prices=PRICES, text=text)


def judge(
    steward: Steward,
    events: EventLog,
    start: datetime,
    end: datetime,
    outputs: dict[str, Any] | None = None,
) -> list[MonitorResult]:
    """The registered monitor over ``[start, end)``; ``outputs`` is the system's steward.yaml
    ``outputs:`` as apply stores it."""
    info = steward.system("assistant")
    if outputs is not None:
        info = dataclasses.replace(info, config={**info.config, "outputs": outputs})
    window = MonitorWindow(steward, events, info, start, end, None, None, exact=True)
    (monitor,) = [m for m in available_monitors() if m.name == "llm_outputs"]
    return monitor.run(window)


def answered(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [call for call in calls if not call.get("error")]


# --- the shifts it must see ----------------------------------------------------------------------


def test_longer_answers_alarm_on_output_tokens_and_chars(
    steward: Steward, events: EventLog
) -> None:
    reference = simulate(11, 400, START)
    current = simulate(12, 400, START + HOUR, verbosity=1.6)
    record(events, reference + current)

    (result,) = judge(steward, events, START + HOUR, START + 2 * HOUR)

    assert result.breach, result.summary
    alarmed = result.details["alarmed_descriptors"]
    assert {"output_tokens", "output_chars"} <= set(alarmed)
    # The summary's means are the recorded answers' own, computed here from the calls.
    tokens = result.details["descriptors"]["output_tokens"]
    assert tokens["reference"] == pytest.approx(
        np.mean([call["output_tokens"] for call in answered(reference)])
    )
    assert tokens["current"] == pytest.approx(
        np.mean([call["output_tokens"] for call in answered(current)])
    )
    assert 1.4 < tokens["current"] / tokens["reference"] < 1.8
    # The reference defaulted to the hour before the window.
    assert result.details["reference_window"] == [START.isoformat(), (START + HOUR).isoformat()]
    rows = [row for row in result.details["results"] if row["descriptor"] == "output_chars"]
    assert {row["method"] for row in rows} >= {"ks", "psi"}
    for row in rows:
        assert row["alarm"] == (
            row["adjusted_p_value"] <= 0.05 and row["statistic"] > row["threshold"]
        )


def test_more_refusals_alarm_on_refused(steward: Steward, events: EventLog) -> None:
    # 800 a side: at 400 the rule (floor + noise at that size) caught this shift in 96 of 100
    # seeded runs, at 800 in 50 of 50.
    reference = simulate(21, 800, START, refusal_rate=0.02)
    current = simulate(22, 800, START + HOUR, refusal_rate=0.15)
    record(events, reference + current)

    (result,) = judge(steward, events, START + HOUR, START + 2 * HOUR)

    assert "refused" in result.details["alarmed_descriptors"], result.summary
    refused = result.details["descriptors"]["refused"]
    for side, calls in (("reference", reference), ("current", current)):
        shares = [call["output_text"] == REFUSAL for call in answered(calls)]
        assert refused[side] == pytest.approx(np.mean(shares))
    assert refused["kind"] == "rate"
    assert "refused" in result.summary and "->" in result.summary


def test_broken_json_alarms_on_json_valid_when_json_is_expected(
    steward: Steward, events: EventLog
) -> None:
    reference = simulate(31, 400, START, json_answers=True)
    current = simulate(32, 400, START + HOUR, json_answers=True, json_break_rate=0.25)
    record(events, reference + current)

    unexpected = judge(steward, events, START + HOUR, START + 2 * HOUR)[0]
    expected = judge(
        steward, events, START + HOUR, START + 2 * HOUR, outputs={"json_expected": True}
    )[0]

    assert "json_valid" not in unexpected.details["descriptors"]
    assert "json_valid" in expected.details["alarmed_descriptors"], expected.summary
    broken = [
        call for call in answered(current) if call["output_text"] != REFUSAL and not _parses(call)
    ]
    valid = expected.details["descriptors"]["json_valid"]
    assert valid["current"] == pytest.approx(1 - len(broken) / valid["n_current"])
    assert valid["reference"] == 1.0


def _parses(call: dict[str, Any]) -> bool:
    try:
        json.loads(call["output_text"])
    except ValueError:
        return False
    return True


@pytest.mark.slow
def test_unchanged_outputs_rarely_alarm(steward: Steward, events: EventLog) -> None:
    """200 independent reference/current pairs with the same knobs: the false-alarm rate of the
    whole check (any descriptor, any method) stays within the feature monitors' 5%."""
    runs, per_side = 200, 400
    calls = []
    for run in range(runs):
        for side in range(2):
            begins = START + (2 * run + side) * HOUR
            calls += simulate(10_000 + 2 * run + side, per_side, begins)
    record(events, calls)
    outputs = {"keywords": KEYWORDS}

    began = time.perf_counter()
    alarms = 0
    for run in range(runs):
        current = START + (2 * run + 1) * HOUR
        (result,) = judge(steward, events, current, current + HOUR, outputs=outputs)
        assert result.details["n_reference"] == result.details["n_current"] == per_side
        assert len(result.details["descriptors"]) == 11
        alarms += result.breach
    elapsed = time.perf_counter() - began

    upper = stats.beta.ppf(0.975, alarms + 1, runs - alarms) if alarms < runs else 1.0
    print(
        f"\nllm_outputs false alarms: {alarms} of {runs} runs ({alarms / runs:.1%}), 95% "
        f"Clopper-Pearson upper bound {upper:.2%}; {elapsed / runs:.2f} s a run"
    )
    assert alarms / runs <= 0.05


# --- the monitor's choices -----------------------------------------------------------------------


def test_the_monitor_is_registered_and_skips_other_tasks(
    steward: Steward, events: EventLog
) -> None:
    assert "llm_outputs" in [monitor.name for monitor in available_monitors()]
    info = steward.system("churn")
    window = MonitorWindow(steward, events, info, START, START + HOUR, None, None, exact=True)
    assert LLMOutputMonitor().run(window) == []


def test_run_monitors_stores_the_llm_outputs_result(steward: Steward, events: EventLog) -> None:
    record(events, simulate(41, 150, START) + simulate(42, 150, START + HOUR, verbosity=1.6))

    results = run_monitors(
        steward, events, "assistant", window=HOUR, at=START + 2 * HOUR, exact=True
    )

    (result,) = [r for r in results if r.monitor == "llm_outputs"]
    assert result.breach
    assert json.loads(json.dumps(result.details))["n_current"] == 150


def test_too_few_calls_is_not_enough_data(steward: Steward, events: EventLog) -> None:
    record(events, simulate(51, 400, START) + simulate(52, MIN_ROWS - 1, START + HOUR))

    (result,) = judge(steward, events, START + HOUR, START + 2 * HOUR)

    assert result.status == "not_enough_data"
    assert f"{MIN_ROWS - 1} LLM calls in the window" in result.summary


def test_groups_with_enough_calls_are_judged_apart(steward: Steward, events: EventLog) -> None:
    record(
        events,
        simulate(61, 300, START, prompt_version=1)
        + simulate(62, 300, START, prompt_version=2)
        + simulate(63, 300, START + HOUR, prompt_version=1)
        + simulate(64, 300, START + HOUR, prompt_version=2, verbosity=1.6),
    )

    results = judge(steward, events, START + HOUR, START + 2 * HOUR)

    by_version = {result.details["group"]["prompt_version"]: result for result in results}
    assert set(by_version) == {1, 2}
    assert not by_version[1].breach, by_version[1].summary
    assert by_version[2].breach
    assert "support-answer v2 on house-model" in by_version[2].summary
    assert by_version[2].details["n_current"] == 300


def test_a_new_prompt_version_is_judged_with_all_calls(steward: Steward, events: EventLog) -> None:
    record(
        events,
        simulate(71, 400, START, prompt_version=1)
        + simulate(72, 400, START + HOUR, prompt_version=2, verbosity=1.6),
    )

    (result,) = judge(steward, events, START + HOUR, START + 2 * HOUR)

    assert result.details["group"] == "all calls"
    sizes = {g["group"]["prompt_version"]: g for g in result.details["groups"]}
    assert (sizes[1]["n_reference"], sizes[1]["n_current"]) == (400, 0)
    assert (sizes[2]["n_reference"], sizes[2]["n_current"]) == (0, 400)
    assert "output_tokens" in result.details["alarmed_descriptors"]


def test_hashed_texts_leave_the_text_descriptors_out(steward: Steward, events: EventLog) -> None:
    record(events, simulate(81, 300, START))
    record(events, simulate(82, 300, START + HOUR), text="hash")

    (result,) = judge(steward, events, START + HOUR, START + 2 * HOUR, {"keywords": ["refunds"]})

    skipped = result.details["skipped_descriptors"]
    text_descriptors = {"output_chars", "output_words", "refused", "sentiment", "keyword:refunds"}
    assert set(skipped) == text_descriptors
    assert all("current" in reason and "hashed" in reason for reason in skipped.values())
    assert {"output_tokens", "latency_ms", "cost", "error"} <= set(result.details["descriptors"])


def test_a_fixed_baseline_comes_from_reference_start(steward: Steward, events: EventLog) -> None:
    record(
        events,
        simulate(91, 300, START)  # the baseline hour
        + simulate(92, 300, START + HOUR, verbosity=1.6)
        + simulate(93, 300, START + 2 * HOUR, verbosity=1.6),
    )
    window = (START + 2 * HOUR, START + 3 * HOUR)

    adjacent = judge(steward, events, *window)[0]
    fixed = judge(steward, events, *window, {"reference_start": START.isoformat()})[0]
    longer = judge(steward, events, *window, {"reference_window": "2h"})[0]

    assert not adjacent.breach, adjacent.summary
    assert fixed.breach
    assert fixed.details["reference_window"] == [START.isoformat(), (START + HOUR).isoformat()]
    assert longer.details["n_reference"] == 600


def test_bad_outputs_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="reference_window: '7 days' is not a duration"):
        OutputSettings.from_config({"reference_window": "7 days"})
    with pytest.raises(ConfigError, match=r"not a valid regular expression"):
        OutputSettings.from_config({"refusal_patterns": ["I can(not"]})
    with pytest.raises(ConfigError, match="unknown key"):
        OutputSettings.from_config({"keyword": ["refund"]})
    with pytest.raises(ConfigError, match="json_expected: expected true or false"):
        OutputSettings.from_config({"json_expected": "yes"})
    settings = OutputSettings.from_config({"refusal_patterns": ["not in a position to"]})
    assert settings.refusal_patterns == (*DEFAULT_REFUSALS, "not in a position to")


def test_output_results_refuses_what_is_not_a_table() -> None:
    with pytest.raises(InvalidInputError, match="cannot read the reference calls, got list"):
        output_results("assistant", (START, START + HOUR), (START - HOUR, START), [], [])


# --- the descriptors -----------------------------------------------------------------------------


def frame(texts: Sequence[str | None], **columns: Any) -> pd.DataFrame:
    return pd.DataFrame({"output_text": texts, **columns})


def test_sentiment_is_vaders_compound_score() -> None:
    texts = [
        "Great news: your refund is approved and on its way!",
        "This is terrible, the parcel is lost and nobody cares.",
        "The invoice lists three items.",
        "I'm sorry, but I can't help with that.",
    ]
    analyzer = SentimentIntensityAnalyzer()

    described = describe_calls(frame(texts))

    expected = [analyzer.polarity_scores(text)["compound"] for text in texts]
    assert described["sentiment"].tolist() == pytest.approx(expected)
    assert expected[0] > 0.5 and expected[1] < 0 and expected[2] == 0


def test_refusals_match_the_defaults_and_the_users_patterns() -> None:
    texts = [
        REFUSAL,
        "I\u2019m sorry, I can\u2019t assist with that request.",
        "As an AI language model, I have no opinion on this.",
        "I cannot help with requests about other customers.",
        "I am not in a position to discuss pricing.",
        "Sorry for the wait: the refund is on its way.",
    ]
    default = describe_calls(frame(texts))["refused"].tolist()
    extended = describe_calls(
        frame(texts), refusal_patterns=(*DEFAULT_REFUSALS, r"\bnot in a position to\b")
    )["refused"].tolist()

    assert default == [1, 1, 1, 1, 0, 0]
    assert extended == [1, 1, 1, 1, 1, 0]
    with pytest.raises(InvalidInputError, match=r"refusal pattern #0 'I can\(not'"):
        describe_calls(frame(texts), refusal_patterns=["I can(not"])


def test_hashed_and_dropped_texts_give_missing_text_descriptors(tmp_path: Path) -> None:
    calls = simulate(101, 30, START)
    with EventLog(tmp_path / "hashed") as events:
        record(events, calls, text="hash")
        hashed = events.scan("llm_call", "assistant")
    with EventLog(tmp_path / "dropped") as events:
        record(events, calls, text="drop")
        dropped = events.scan("llm_call", "assistant")

    for table in (hashed, dropped):
        described = describe_calls(table, keywords=["refunds"], json_expected=True)
        for name in ("output_chars", "output_words", "refused", "json_valid", "sentiment"):
            assert described[name].isna().all(), name
        assert described["keyword:refunds"].isna().all()
        tokens = [call.get("output_tokens", 0) for call in calls]
        expected = [math.nan if not count else float(count) for count in tokens]
        assert described["output_tokens"].tolist() == pytest.approx(expected, nan_ok=True)
        assert described["latency_ms"].notna().all()
    assert hashed.column("output_text").to_pylist()[0].startswith("sha256:")


def test_failed_calls_have_no_answer_but_count_as_errors(tmp_path: Path) -> None:
    calls = simulate(111, 200, START, error_rate=0.2)
    failed = [bool(call.get("error")) for call in calls]
    with EventLog(tmp_path / "events") as events:
        record(events, calls)
        described = describe_calls(events.scan("llm_call", "assistant"))

    assert described["error"].tolist() == [float(flag) for flag in failed]
    assert described.loc[failed, "output_chars"].isna().all()
    assert described.loc[failed, "output_tokens"].isna().all()
    assert (described.loc[failed, "finish_reason"] == "error").all()
    assert (described.loc[[not flag for flag in failed], "finish_reason"] == "stop").all()


def test_cost_is_missing_for_unpriced_calls(tmp_path: Path) -> None:
    calls = simulate(121, 20, START)
    for call in calls[10:]:
        call["request_model"] = "unknown-house-model"
    with EventLog(tmp_path / "events") as events:
        record(events, calls)
        table = events.scan("llm_call", "assistant")
    described = describe_calls(table)

    by_id = dict(zip(table.column("id").to_pylist(), described["cost"], strict=True))
    for call in calls:
        cost = by_id[call["id"]]
        if call["request_model"] == "house-model":
            by_hand = (call.get("input_tokens", 0) * RATES["input"]) + (
                call.get("output_tokens", 0) * RATES["output"]
            )
            assert cost == pytest.approx(by_hand / 1e6)
        else:
            assert math.isnan(cost)


def test_keywords_count_whole_words_and_phrases_ignoring_case() -> None:
    texts = [
        "Refunds, refunds and REFUNDS: refunded in full.",
        "A free\ntrial, not a freetrial.",
        None,
    ]

    described = describe_calls(frame(texts), keywords=["refunds", "free trial"])

    assert described["keyword:refunds"].tolist() == pytest.approx([3, 0, math.nan], nan_ok=True)
    assert described["keyword:free trial"].tolist() == pytest.approx([0, 1, math.nan], nan_ok=True)
    with pytest.raises(InvalidInputError, match="the same when case is ignored"):
        describe_calls(frame(texts), keywords=["Refunds", "refunds"])


def test_lengths_and_json_validity_are_read_from_the_text() -> None:
    texts = ['{"answer": "yes"}', '{"answer": "yes"', "plain words here", REFUSAL]

    described = describe_calls(frame(texts), json_expected=True)
    plain = describe_calls(frame(texts))

    assert described["output_chars"].tolist() == [len(text) for text in texts]
    assert described["output_words"].tolist() == [len(text.split()) for text in texts]
    assert described["json_valid"].tolist() == pytest.approx([1, 0, 0, math.nan], nan_ok=True)
    assert "json_valid" not in plain.columns
    with pytest.raises(InvalidInputError, match="no 'output_text' column"):
        describe_calls(pd.DataFrame({"text": texts}))


def test_finish_reasons_are_mapped_to_one_vocabulary() -> None:
    reasons = ['["stop"]', '["length"]', ["content_filter"], "end_turn", "MAX_TOKENS", "SAFETY"]
    mapped = [finish_reason(value) for value in reasons]

    assert mapped == ["stop", "length", "content_filter", "stop", "length", "content_filter"]
    assert finish_reason('["tool_calls"]') == "tool_calls"
    assert finish_reason("[]") is None and finish_reason(None) is None
    assert finish_reason('["something_new"]') == "other"
