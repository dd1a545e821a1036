"""SLOs on an LLM system's calls: latency, errors and cost per call, counted from the event log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from steward import Steward
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

    with pytest.raises(ConfigError, match="an LLM system's SLOs use cost, error_rate"):
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
