"""The eval gate: does a candidate prompt version do as well as the one in production?

Both versions run the same eval set, so each case gives a pair of outcomes. The candidate fails
the gate when

- it passes fewer cases than the baseline beyond what chance explains: the exact one-sided
  McNemar test (a binomial test on the discordant pairs: cases only the baseline passed against
  cases only the candidate passed) rejects "no worse" at ``alpha`` (default 0.05);
- any case marked ``critical`` fails;
- any threshold of the eval set's ``gate:`` section is not met: ``min_pass_rate`` (share of
  cases the candidate passes) or ``assertions`` (for an assertion type, the share of cases where
  it holds, e.g. ``{word-count: 0.9}``).

Cases skipped on either side (every assertion skipped, e.g. a judge with no judge provider) are
left out of the pairs and counted. With no baseline (the label points at nothing yet), only the
critical cases and thresholds decide, and the summary says so.

>>> from steward.llm.evals.runner import CaseResult, EvalResult
>>> def result(outcomes):
...     cases = [CaseResult(f"c{i}", "", False, {}, "", None, [], ok, 1.0 if ok else 0.0)
...              for i, ok in enumerate(outcomes)]
...     return EvalResult(eval_set="set", eval_set_sha256="", provider="echo", cases=cases)
>>> decision = decide(result([False] * 8 + [True] * 12), result([True] * 20))
>>> decision.passed, decision.worse, decision.better, round(decision.p_value, 4)
(False, 8, 0, 0.0039)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from scipy import stats

from steward.errors import ConfigError
from steward.llm.evals.runner import EvalResult

__all__ = ["GateDecision", "GateOptions", "decide", "read_gate_options"]

TEST_NAME = "exact one-sided McNemar test (binomial on the discordant pairs)"


@dataclass(frozen=True)
class GateOptions:
    """What the gate holds a candidate to; the eval set's ``gate:`` section sets these."""

    alpha: float = 0.05
    min_pass_rate: float | None = None
    assertions: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reasons: list[str]
    candidate_pass_rate: float | None
    baseline_pass_rate: float | None
    n_pairs: int
    worse: int  # cases the baseline passed and the candidate failed
    better: int  # cases the candidate passed and the baseline failed
    p_value: float | None
    alpha: float
    critical_failures: list[str]
    skipped: int
    test: str = TEST_NAME

    def summary(self) -> str:
        """One sentence with the figures, for the CLI, the audit log and a label move."""
        verdict = "passed" if self.passed else "failed"
        rate = _percent(self.candidate_pass_rate)
        if self.baseline_pass_rate is None:
            against = "no baseline (the label points at no version yet)"
        else:
            p_text = "n/a" if self.p_value is None else f"{self.p_value:.3g}"
            against = (
                f"baseline {_percent(self.baseline_pass_rate)}; {self.worse} case(s) worse, "
                f"{self.better} better over {self.n_pairs} pairs, p = {p_text} "
                f"({self.test}, alpha {self.alpha})"
            )
        why = f": {'; '.join(self.reasons)}" if self.reasons else ""
        return f"gate {verdict}: candidate {rate}, {against}{why}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


def decide(
    candidate: EvalResult, baseline: EvalResult | None, options: GateOptions | None = None
) -> GateDecision:
    """Judge ``candidate`` against ``baseline`` (same eval set) by the rules in the module doc."""
    options = options or GateOptions()
    reasons: list[str] = []
    critical = list(candidate.failed_critical)
    if critical:
        reasons.append(f"critical case(s) failed: {', '.join(critical)}")
    reasons += _threshold_failures(candidate, options)
    worse = better = n_pairs = 0
    p_value = None
    skipped = sum(case.passed is None for case in candidate.cases)
    if baseline is not None:
        paired = _pairs(candidate, baseline)
        skipped = len(candidate.cases) - len(paired)
        n_pairs = len(paired)
        worse = sum(old and not new for new, old in paired)
        better = sum(new and not old for new, old in paired)
        if worse + better:
            test = stats.binomtest(worse, worse + better, 0.5, alternative="greater")
            p_value = float(test.pvalue)
        if p_value is not None and p_value < options.alpha:
            reasons.append(
                f"worse than the baseline beyond chance ({worse} case(s) worse, {better} better, "
                f"p = {p_value:.3g} < {options.alpha})"
            )
    return GateDecision(
        passed=not reasons,
        reasons=reasons,
        candidate_pass_rate=candidate.pass_rate,
        baseline_pass_rate=None if baseline is None else baseline.pass_rate,
        n_pairs=n_pairs,
        worse=worse,
        better=better,
        p_value=p_value,
        alpha=options.alpha,
        critical_failures=critical,
        skipped=skipped,
    )


def _pairs(candidate: EvalResult, baseline: EvalResult) -> list[tuple[bool, bool]]:
    """(candidate passed, baseline passed) for each case both sides decided."""
    before = {case.case_id: case.passed for case in baseline.cases}
    return [
        (bool(case.passed), bool(before[case.case_id]))
        for case in candidate.cases
        if case.passed is not None and before.get(case.case_id) is not None
    ]


def _threshold_failures(candidate: EvalResult, options: GateOptions) -> list[str]:
    failures = []
    rate = candidate.pass_rate
    if options.min_pass_rate is not None and (rate is None or rate < options.min_pass_rate):
        failures.append(f"pass rate {_percent(rate)} is below {_percent(options.min_pass_rate)}")
    for kind, minimum in sorted(options.assertions.items()):
        outcomes = [
            result.passed
            for case in candidate.cases
            for result in case.assertions
            if result.type == kind and result.passed is not None
        ]
        share = sum(outcomes) / len(outcomes) if outcomes else None
        if share is None or share < minimum:
            failures.append(
                f"'{kind}' held in {_percent(share)} of cases, below its threshold "
                f"{_percent(minimum)}"
            )
    return failures


def read_gate_options(path: Path, alpha: float | None = None) -> GateOptions:
    """The ``gate:`` section of a YAML eval set (none in JSONL or CSV files: the defaults)."""
    data: Any = None
    if path.suffix.lower() in (".yaml", ".yml"):
        data = yaml.safe_load(path.read_text())
    section = data.get("gate") if isinstance(data, Mapping) else None
    if section is None:
        return GateOptions(alpha=0.05 if alpha is None else alpha)
    if not isinstance(section, Mapping) or set(section) - {"alpha", "min_pass_rate", "assertions"}:
        raise ConfigError(
            f"{path}: gate: expects a mapping with alpha, min_pass_rate and assertions "
            f"(type: minimum share), got {section!r}"
        )
    options = GateOptions(
        alpha=float(section.get("alpha", 0.05)) if alpha is None else alpha,
        min_pass_rate=_share(path, "min_pass_rate", section.get("min_pass_rate")),
        assertions={
            str(kind): float(_share(path, f"assertions.{kind}", value) or 0.0)
            for kind, value in (section.get("assertions") or {}).items()
        },
    )
    if not 0 < options.alpha < 1:
        raise ConfigError(f"{path}: gate.alpha must be between 0 and 1, got {options.alpha}")
    return options


def _share(path: Path, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"{path}: gate.{key} must be a share between 0 and 1, got {value!r}")
    return float(value)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"
