"""Running an eval set: render each case, ask the provider, check the answer, sum up the run.

The runner knows nothing of where prompts live: the caller passes ``render(vars) -> ChatRequest``.
A case whose rendering or provider call fails records the error and fails; the run goes on. The
result is plain data (``to_dict``/``from_dict``) so a stored run reads back as it was.

>>> from steward.llm.evals.cases import Assertion, EvalCase, EvalSet
>>> from steward.llm.providers import ChatRequest, EchoProvider
>>> cases = [EvalCase("ada", vars={"name": "Ada"}, assertions=[Assertion("contains", "Ada")])]
>>> render = lambda v: ChatRequest(messages=[{"role": "user", "content": f"Hello {v['name']}"}])
>>> result = run_eval(EvalSet("greet", cases, sha256="0" * 64), render, EchoProvider())
>>> result.n_passed, result.pass_rate, result.cases[0].output
(1, 1.0, 'Hello Ada')
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steward.errors import InvalidInputError, StewardError
from steward.llm.evals.assertions import (
    AssertionResult,
    CheckContext,
    case_outcome,
    check_assertion,
    skipped_result,
)
from steward.llm.evals.cases import JUDGE_TYPES, EvalCase, EvalSet
from steward.llm.evals.judges import (
    DEFAULT_REPEATS,
    JudgeConsistency,
    JudgePool,
    check_judged,
    judge_consistency,
)
from steward.llm.providers import ChatRequest, Completion

__all__ = ["CaseResult", "EvalResult", "Render", "run_case", "run_eval", "skipped_run"]

Render = Callable[[dict[str, Any]], ChatRequest]


@dataclass
class CaseResult:
    """One case's run: the answer, each assertion's result, and the verdict.

    ``passed`` is None when every assertion was skipped; ``error`` is set (and ``passed`` False)
    when the prompt could not be rendered or the provider did not answer.
    """

    case_id: str
    description: str
    critical: bool
    vars: dict[str, Any]
    output: str | None
    completion: dict[str, Any] | None
    assertions: list[AssertionResult]
    passed: bool | None
    score: float | None
    error: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data (vars that are not JSON are written as text)."""
        return {
            "case_id": self.case_id,
            "description": self.description,
            "critical": self.critical,
            "vars": _json_safe(self.vars),
            "output": self.output,
            "completion": self.completion,
            "assertions": [result.to_dict() for result in self.assertions],
            "passed": self.passed,
            "score": self.score,
            "error": self.error,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseResult:
        """A case result from :meth:`to_dict` output."""
        return cls(
            case_id=str(data["case_id"]),
            description=str(data.get("description", "")),
            critical=bool(data.get("critical", False)),
            vars=dict(data.get("vars") or {}),
            output=data.get("output"),
            completion=data.get("completion"),
            assertions=[AssertionResult.from_dict(item) for item in data.get("assertions", [])],
            passed=data.get("passed"),
            score=data.get("score"),
            error=data.get("error"),
            reason=str(data.get("reason", "")),
        )


@dataclass
class EvalResult:
    """A run of one eval set through one provider (and, for promptfoo, one prompt ``label``)."""

    eval_set: str
    eval_set_sha256: str
    provider: str
    cases: list[CaseResult]
    judge: JudgeConsistency = field(default_factory=JudgeConsistency)
    label: str = ""
    repeats: int = DEFAULT_REPEATS

    @property
    def n_passed(self) -> int:
        return sum(case.passed is True for case in self.cases)

    @property
    def n_failed(self) -> int:
        return sum(case.passed is False for case in self.cases)

    @property
    def n_skipped(self) -> int:
        return sum(case.passed is None for case in self.cases)

    @property
    def pass_rate(self) -> float | None:
        """Passed over the cases that were not skipped; None when every case was skipped."""
        judged = self.n_passed + self.n_failed
        return self.n_passed / judged if judged else None

    @property
    def failed_critical(self) -> list[str]:
        """The ids of critical cases that failed (a gate fails on any of them)."""
        return [case.case_id for case in self.cases if case.critical and case.passed is False]

    @property
    def input_tokens(self) -> int:
        return sum(int(completion.get("input_tokens", 0)) for completion in self._completions())

    @property
    def output_tokens(self) -> int:
        return sum(int(completion.get("output_tokens", 0)) for completion in self._completions())

    @property
    def cost(self) -> float | None:
        """Total US dollars of the provider calls; None if any answer's cost is unknown."""
        costs = [completion.get("cost") for completion in self._completions()]
        if any(cost is None for cost in costs):
            return None
        return float(sum(float(cost) for cost in costs if cost is not None))

    @property
    def latency_p50_ms(self) -> float | None:
        latencies = self._latencies()
        return float(statistics.median(latencies)) if latencies else None

    @property
    def latency_max_ms(self) -> float | None:
        latencies = self._latencies()
        return max(latencies) if latencies else None

    def _completions(self) -> list[dict[str, Any]]:
        return [case.completion for case in self.cases if case.completion is not None]

    def _latencies(self) -> list[float]:
        return [float(completion.get("latency_ms", 0.0)) for completion in self._completions()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data, the summary figures included; :meth:`from_dict` reads it back."""
        return {
            "eval_set": self.eval_set,
            "eval_set_sha256": self.eval_set_sha256,
            "provider": self.provider,
            "label": self.label,
            "repeats": self.repeats,
            "passed": self.n_passed,
            "failed": self.n_failed,
            "skipped": self.n_skipped,
            "pass_rate": self.pass_rate,
            "failed_critical": self.failed_critical,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_max_ms": self.latency_max_ms,
            "judge": self.judge.to_dict(),
            "cases": [case.to_dict() for case in self.cases],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalResult:
        """A run from :meth:`to_dict` output; the summary figures are recomputed from the cases."""
        return cls(
            eval_set=str(data["eval_set"]),
            eval_set_sha256=str(data.get("eval_set_sha256", "")),
            provider=str(data.get("provider", "")),
            cases=[CaseResult.from_dict(item) for item in data.get("cases", [])],
            judge=JudgeConsistency.from_dict(data.get("judge") or {}),
            label=str(data.get("label", "")),
            repeats=int(data.get("repeats", DEFAULT_REPEATS)),
        )


def run_eval(
    eval_set: EvalSet,
    render: Render,
    provider: Any,
    *,
    judge: Any = None,
    repeats: int = DEFAULT_REPEATS,
    progress: Callable[[int, int], None] | None = None,
    label: str = "",
) -> EvalResult:
    """Run every case of ``eval_set``: ``render(vars)``, ``provider.complete``, check the answer.

    ``judge`` is the provider for ``llm-rubric`` and ``similar`` (or a :class:`JudgePool`); each
    judged assertion is asked ``repeats`` times. ``progress(done, total)`` is called after each case.
    """
    if repeats < 1:
        raise InvalidInputError(f"repeats must be at least 1, got {repeats}")
    judges = judge if isinstance(judge, JudgePool) else JudgePool(judge)
    results = []
    total = len(eval_set.cases)
    for done, case in enumerate(eval_set.cases, start=1):
        results.append(
            run_case(
                case, render, provider, judges=judges, repeats=repeats, base_dir=eval_set.base_dir
            )
        )
        if progress is not None:
            progress(done, total)
    return EvalResult(
        eval_set=eval_set.name,
        eval_set_sha256=eval_set.sha256,
        provider=_provider_id(provider),
        cases=results,
        judge=judge_consistency(result for case in results for result in case.assertions),
        label=label,
        repeats=repeats,
    )


def run_case(
    case: EvalCase,
    render: Render,
    provider: Any,
    *,
    judges: JudgePool | None = None,
    repeats: int = DEFAULT_REPEATS,
    base_dir: Path | None = None,
) -> CaseResult:
    """Run one case; a render or provider error becomes the case's ``error``, never an exception."""
    try:
        request = render(dict(case.vars))
    except Exception as error:  # the caller's renderer: any failure is this case's, not the run's
        return _errored(case, f"could not render the prompt: {_describe(error)}")
    try:
        completion = provider.complete(request)
    except Exception as error:  # a provider is an outside service: its failure fails this case
        return _errored(case, f"{_provider_id(provider)} did not answer: {_describe(error)}")
    context = CheckContext(
        vars=case.vars,
        completion=completion,
        prompt=request.text,
        base_dir=base_dir if base_dir is not None else Path.cwd(),
        case_id=case.id,
        description=case.description,
    )
    pool = judges if judges is not None else JudgePool()
    results = [
        check_judged(assertion, completion.text, context, pool, repeats=repeats)
        if assertion.base_type in JUDGE_TYPES
        else check_assertion(assertion, completion.text, context)
        for assertion in case.assertions
    ]
    passed, score, reason = case_outcome(results, case.threshold)
    return _case_result(case, completion, results, passed, score, reason)


def _case_result(
    case: EvalCase,
    completion: Completion | None,
    results: list[AssertionResult],
    passed: bool | None,
    score: float | None,
    reason: str,
    error: str | None = None,
) -> CaseResult:
    return CaseResult(
        case_id=case.id,
        description=case.description,
        critical=case.critical,
        vars=dict(case.vars),
        output=completion.text if completion is not None else None,
        completion=completion.to_dict() if completion is not None else None,
        assertions=results,
        passed=passed,
        score=score,
        error=error,
        reason=reason,
    )


def _errored(case: EvalCase, error: str) -> CaseResult:
    results = [skipped_result(a, "not checked: the case has no answer") for a in case.assertions]
    return _case_result(case, None, results, False, 0.0, error, error=error)


def skipped_run(eval_set: EvalSet, provider_id: str, reason: str, *, label: str = "") -> EvalResult:
    """A run where nothing could be run (an unsupported provider or prompt): every case skipped."""
    cases = [
        _case_result(
            case,
            None,
            [skipped_result(assertion, reason) for assertion in case.assertions],
            None,
            None,
            f"skipped: {reason}",
        )
        for case in eval_set.cases
    ]
    return EvalResult(eval_set.name, eval_set.sha256, provider_id, cases, label=label)


def _provider_id(provider: Any) -> str:
    return str(getattr(provider, "id", type(provider).__name__))


def _describe(error: Exception) -> str:
    return str(error) if isinstance(error, StewardError) else f"{type(error).__name__}: {error}"


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return str(value)
