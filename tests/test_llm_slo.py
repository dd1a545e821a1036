"""SLOs on an LLM system's calls: latency, errors and cost per call, counted from the event log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from steward import Steward
from steward._util.times import parse_window
from steward.errors import ConfigError
from steward.llm.calls import record_calls
from steward.llm.cost import PriceBook
from steward.monitoring.slo import SLOStatus, evaluate
from steward.workspace.config import SLOConfig

AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
RATES = {"valid_from": "2026-01-01", "input": 1.0, "output": 4.0}  # dollars per million tokens


@pytest.fixture
def steward(tmp_path: Path) -> Steward:
    (tmp_path / "steward.yaml").write_text(
        yaml.safe_dump(
            {
                "systems": [
                    {"name": "assistant", "task": "llm", "prices": {"house": [RATES]}},
                    {"name": "churn", "task": "binary"},
                ]
            }
        )
    )
    opened = Steward.open(tmp_path)
    opened.init()
    opened.apply()
    yield opened
    opened.close()


def test_latency_error_and_cost_slos_count_the_calls(steward: Steward) -> None:
    rng = np.random.default_rng(3)
    n = 400
    minutes = rng.uniform(1, 60 * 24 * 6, n)  # the last six days
    latency = rng.lognormal(6.0, 0.6, n)
    output = rng.integers(50, 900, n)
    failed = rng.random(n) < 0.04
    calls = [
        {
            "id": f"c{i}",
            "event_time": (AT - timedelta(minutes=float(minutes[i]))).isoformat(),
            "request_model": "house" if i % 10 else "nobody-prices-this",
            "input_tokens": 300,
            "output_tokens": int(output[i]),
            "latency_ms": float(latency[i]),
            "error": "timeout" if failed[i] else None,
        }
        for i in range(n)
    ]
    book = PriceBook({"house": [RATES]})
    record_calls(steward.events, "assistant", calls, prices=book)
    steward.events.flush()

    def status(indicator: str, threshold: float | None) -> SLOStatus:
        slo = SLOConfig(
            name=indicator,
            indicator=indicator,
            objective=0.9,
            threshold=threshold,
            window="30d",
            min_events=10,
        )
        return evaluate(steward, steward.events, "assistant", slo, AT, store=False)

    last_hour = minutes <= 60
    over = latency > 800
    fast = status("latency", 800)
    assert fast.n_events == n
    assert fast.sli == pytest.approx(1 - over.mean())
    assert {w.window: (w.n_events, w.n_bad) for w in fast.windows}["1h"] == (
        int(last_hour.sum()),
        int((over & last_hour).sum()),
    )
    assert status("error_rate", None).sli == pytest.approx(1 - failed.mean())
    priced = np.array([i % 10 != 0 for i in range(n)])
    cost = (300 * 1.0 + output * 4.0) / 1e6
    cheap = status("cost", 0.002)
    assert cheap.n_events == int(priced.sum())  # unpriced calls are not counted
    assert cheap.sli == pytest.approx(1 - (cost[priced] > 0.002).mean())


def test_llm_indicators_are_checked_against_the_task(steward: Steward) -> None:
    def slo(indicator: str, threshold: float | None = 1.0) -> SLOConfig:
        return SLOConfig(name="x", indicator=indicator, objective=0.9, threshold=threshold)

    with pytest.raises(ConfigError, match="an LLM system's SLOs use cost, daily_cost, error_rate"):
        evaluate(steward, steward.events, "assistant", slo("roc_auc"), AT, store=False)
    with pytest.raises(ConfigError, match="output_drift watches an LLM system's answers"):
        evaluate(steward, steward.events, "churn", slo("output_drift"), AT, store=False)
    with pytest.raises(ConfigError, match="'cost' needs a threshold in dollars a call"):
        evaluate(steward, steward.events, "assistant", slo("cost", None), AT, store=False)
    with pytest.raises(ConfigError, match="no cost is logged per prediction yet"):
        evaluate(steward, steward.events, "churn", slo("cost"), AT, store=False)


def test_the_rollback_prompt_step_moves_production_back(steward: Steward) -> None:
    from steward.llm import prompts
    from steward.loop.playbooks import run_step

    root = steward.settings.workspace
    config = yaml.safe_load(steward.settings.config_path.read_text())
    config["systems"][0]["prompts"] = [{"name": "answer", "file": "answer.yaml"}]
    steward.settings.config_path.write_text(yaml.safe_dump(config))
    skipped = run_step(steward, steward.events, "assistant", "rollback_prompt")
    assert skipped.status == "skipped" and "no prompt with a production label" in skipped.reason
    for text in ("Answer {{ q }}", "Answer at length {{ q }}"):
        (root / "answer.yaml").write_text(f"template: '{text}'\nvariables: [q]\nprovider: echo\n")
        steward.apply()
    prompts.move_label(steward.store, "assistant", "answer", "production", 1, actor="ana")
    prompts.move_label(steward.store, "assistant", "answer", "production", 2, actor="ana")
    done = run_step(steward, steward.events, "assistant", "rollback_prompt")
    assert done.status == "done" and "from v2 to v1" in done.reason
    assert prompts.get_prompt(steward.store, "assistant", "answer", "production").version == 1


def _calls(n: int, rng: np.random.Generator, **fields: object) -> list[dict[str, object]]:
    minutes = rng.uniform(1, 60 * 24 * 6, n)  # the last six days
    return [
        {
            "id": f"c{i}",
            "event_time": (AT - timedelta(minutes=float(minutes[i]))).isoformat(),
            "request_model": "house",
            "input_tokens": 300,
            "output_tokens": int(rng.integers(50, 900)),
            **{
                name: value[i] if isinstance(value, list) else value
                for name, value in fields.items()
            },
        }
        for i in range(n)
    ]


def test_refusal_rate_counts_the_answers_the_output_monitor_calls_refusals(
    steward: Steward,
) -> None:
    from steward.llm.descriptors import DEFAULT_REFUSALS, describe_calls

    config = yaml.safe_load(steward.settings.config_path.read_text())
    config["systems"][0]["outputs"] = {"refusal_patterns": ["not in a position to"]}
    steward.settings.config_path.write_text(yaml.safe_dump(config))
    steward.apply()
    rng = np.random.default_rng(5)
    n = 300
    pool = [
        "Your refund is on its way.",
        "I\u2019m sorry, but I can\u2019t help with that.",  # typographic apostrophes
        "AS AN AI, I have no opinion.",
        "I am not in a position to say.",  # the system's own pattern
        "Sure: restart the router, then wait a minute.",
        "sha256:" + "ab" * 32,  # a hashed text is not an answer to read
    ]
    texts = [pool[int(k)] for k in rng.integers(0, len(pool), n)]
    errors = [("boom" if rng.random() < 0.05 else None) for _ in range(n)]
    calls = _calls(n, rng, output_text=texts, error=errors)
    record_calls(steward.events, "assistant", calls, prices=PriceBook({"house": [RATES]}))
    steward.events.flush()
    slo = SLOConfig(name="r", indicator="refusal_rate", objective=0.9, min_events=10)
    status = evaluate(steward, steward.events, "assistant", slo, AT, store=False)

    # Independently: the descriptors' own reading of the same calls, with the same patterns.
    described = describe_calls(
        steward.events.query("SELECT output_text, error FROM llm_calls"),
        refusal_patterns=(*DEFAULT_REFUSALS, "not in a position to"),
    )
    refused = described["refused"].dropna()
    assert status.n_events == len(refused) < n
    assert status.sli == pytest.approx(1 - refused.mean())
    assert 0 < refused.mean() < 1


def test_refusal_rate_needs_kept_texts_and_re2_patterns(steward: Steward) -> None:
    config = yaml.safe_load(steward.settings.config_path.read_text())
    config["systems"][0]["call_text"] = "hash"
    steward.settings.config_path.write_text(yaml.safe_dump(config))
    steward.apply()
    slo = SLOConfig(name="r", indicator="refusal_rate", objective=0.9)
    with pytest.raises(ConfigError, match="call_text: hash; set call_text: keep"):
        evaluate(steward, steward.events, "assistant", slo, AT, store=False)
    config["systems"][0]["call_text"] = "keep"
    config["systems"][0]["outputs"] = {"refusal_patterns": [r"(?<!not )allowed"]}
    steward.settings.config_path.write_text(yaml.safe_dump(config))
    steward.apply()
    with pytest.raises(ConfigError, match=r"refusal pattern '\(\?<!not \)allowed' cannot run"):
        evaluate(steward, steward.events, "assistant", slo, AT, store=False)
    with pytest.raises(ConfigError, match="refusal_rate watches an LLM system's answers"):
        evaluate(steward, steward.events, "churn", slo, AT, store=False)


def test_daily_cost_burns_the_budget_at_the_spend_pace(steward: Steward) -> None:
    rng = np.random.default_rng(9)
    n = 500
    calls = _calls(n, rng, output_text="ok")
    calls += [{**calls[0], "id": "free", "request_model": "nobody-prices-this"}]
    record_calls(steward.events, "assistant", calls, prices=PriceBook({"house": [RATES]}))
    steward.events.flush()
    cost = np.array([(300 * 1.0 + c["output_tokens"] * 4.0) / 1e6 for c in calls[:n]])
    times = np.array([datetime.fromisoformat(str(c["event_time"])) for c in calls[:n]])
    per_day = cost.sum() / 6  # the calls span six days: spending exactly at this pace burns 1x

    def budget(dollars: float, **options: object) -> SLOStatus:
        slo = SLOConfig(
            name="spend", indicator="daily_cost", threshold=dollars, window="7d", **options
        )
        return evaluate(steward, steward.events, "assistant", slo, AT, store=False)

    status = budget(per_day, min_events=5)
    assert status.objective is None and status.n_events == n
    assert status.sli == pytest.approx(cost.sum() / 7)
    assert status.budget_remaining == pytest.approx(1 - cost.sum() / (per_day * 7))
    assert len(status.windows) >= 4  # the SLO window and the default pairs scaled to 7d
    for window in status.windows:
        hours = parse_window(window.window) / timedelta(hours=1)
        inside = times >= AT - timedelta(hours=hours)
        assert window.spend == pytest.approx(cost[inside].sum())
        if inside.any():
            assert window.burn_rate == pytest.approx(cost[inside].sum() / (per_day * hours / 24))
    assert "1 unpriced calls not counted" in status.reason
    assert "a day against a budget of" in status.summary

    # A budget a twentieth of the pace: every window with enough calls burns about 20x; pairs fire.
    tight = budget(
        per_day / 20, min_events=1, alerts=[{"long": "2d", "short": "1d", "burn_rate": 10}]
    )
    assert tight.status == "alerting" and tight.alerting[0].long_burn > 10
    assert budget(per_day * 3, min_events=1).status == "ok"


def test_daily_cost_is_a_budget_without_an_objective() -> None:
    with pytest.raises(ValueError, match="takes no objective; remove objective: 0.99"):
        SLOConfig(name="s", indicator="daily_cost", objective=0.99, threshold=5)
    with pytest.raises(ValueError, match="needs a positive threshold"):
        SLOConfig(name="s", indicator="daily_cost")
    with pytest.raises(ValueError, match="needs an objective between 0 and 1"):
        SLOConfig(name="s", indicator="latency", threshold=200)
