"""The Grafana dashboard in ``deploy/grafana`` asks only for metrics a real server exports.

Every PromQL expression in the dashboard (panel targets and the template variable's query) is parsed
with ``promql-parser`` (the Prometheus parser's Rust port); each metric it selects must be on a real
``steward serve``'s ``/metrics``, and each label it matches or groups by must be one that metric has.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families

from steward.web.health_metrics import HEALTH_METRICS

DASHBOARD = Path(__file__).parents[1] / "deploy" / "grafana" / "steward-dashboard.json"
#: Grafana's own interval variables, as Grafana fills them in before Prometheus sees the query.
GRAFANA_INTERVALS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "7d"}
#: Labels every Prometheus series gets from the scrape, and the histogram bucket label.
SCRAPE_LABELS = {"job", "instance", "le"}


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from panels(item.get("panels", []))


def expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: the panels' targets, and inside the variables' label_values()."""
    found = [
        target["expr"]
        for panel in panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else ""
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", text)
        if match:
            found.append(f"{match[1]}{{{match[2]}!=''}}")  # the label it lists must exist too
    return found


def selectors(expression: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names it matches) of every vector selector, and the labels the
    expression groups or matches on, which must then exist on the selected metrics too."""
    for variable, value in GRAFANA_INTERVALS.items():
        expression = expression.replace(variable, value)
    tree = promql_parser.parse(expression)
    found: list[tuple[str, set[str]]] = []
    grouping: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            labels = {matcher.name for matcher in node.matchers.matchers}
            found.append((node.name, labels))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouping.update(node.modifier.labels)

    promql_parser.walk(tree, visit)
    assert found, f"no metric in {expression!r}"
    return [(name, labels | grouping) for name, labels in found]


def exported(text: str) -> dict[str, set[str] | None]:
    """Each series name /metrics exports, with its label names (None when it has no sample yet
    and so its labels cannot be read off the scrape)."""
    names: dict[str, set[str] | None] = {}
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        for suffix in suffixes.get(family.type, [""]):
            names.setdefault(family.name + suffix, None)
        if family.name in HEALTH_METRICS:
            names[family.name] = set(HEALTH_METRICS[family.name][1])
        for sample in family.samples:
            names[sample.name] = (names.get(sample.name) or set()) | set(sample.labels)
    return names


def test_every_dashboard_expression_parses() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    found = expressions(dashboard)
    assert len(found) >= 20
    for expression in found:
        selectors(expression)  # raises on a syntax error


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_metric_and_label_in_the_dashboard_is_one_the_server_exports(
    server: Any, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    server.start()
    frame, _ = telco
    records = frame.drop(columns=["customerID"]).head(5).to_dict(orient="records")
    scored = httpx.post(
        f"{server.url}/v1/systems/churn/predict", json={"records": records}, timeout=30
    )
    assert scored.status_code == 200, scored.text
    names = exported(httpx.get(f"{server.url}/metrics", timeout=30).text)
    dashboard = json.loads(DASHBOARD.read_text())
    checked = set()
    for expression in expressions(dashboard):
        for name, labels in selectors(expression):
            assert name in names, f"{expression!r} selects {name}, which /metrics does not export"
            known = names[name]
            if known is not None:
                unknown = labels - known - SCRAPE_LABELS
                assert not unknown, f"{expression!r}: {name} has no label {sorted(unknown)}"
            checked.add(name)
    # The dashboard covers each part the issue names: drift, SLOs, alerts, performance, traffic.
    for name in (
        "steward_drift_statistic",
        "steward_slo_budget_remaining_ratio",
        "steward_slo_burn_rate",
        "steward_alerts_open",
        "steward_performance",
        "steward_estimated_performance",
        "steward_predictions_total",
        "steward_http_request_seconds_bucket",
    ):
        assert name in checked
