"""Eval sets that gate every change to an LLM system, checked with promptfoo's semantics.

- :mod:`~steward.llm.evals.cases`: ``EvalSet``/``EvalCase``/``Assertion`` and ``load_eval_set``
  (YAML, JSONL, promptfoo-style CSV);
- :mod:`~steward.llm.evals.assertions`: the deterministic assertions and a case's outcome;
- :mod:`~steward.llm.evals.judges`: ``llm-rubric`` and ``similar``, repeated, and the judge's
  consistency over a run;
- :mod:`~steward.llm.evals.runner`: ``run_eval`` and its ``EvalResult``;
- :mod:`~steward.llm.evals.promptfoo`: promptfoo configurations, loaded and run.

Everything here is pure: no store, no settings. The registry, the gate and the CLI call it.
"""

from __future__ import annotations

from steward.llm.evals.assertions import (
    AssertionResult,
    CheckContext,
    case_outcome,
    check_assertion,
)
from steward.llm.evals.cases import Assertion, EvalCase, EvalSet, load_eval_set
from steward.llm.evals.judges import (
    UNANIMITY_FLOOR,
    JudgeConsistency,
    JudgePool,
    check_judged,
    judge_consistency,
)
from steward.llm.evals.promptfoo import PromptfooConfig, load_promptfoo, run_promptfoo
from steward.llm.evals.runner import CaseResult, EvalResult, run_case, run_eval, skipped_run

__all__ = [
    "UNANIMITY_FLOOR",
    "Assertion",
    "AssertionResult",
    "CaseResult",
    "CheckContext",
    "EvalCase",
    "EvalResult",
    "EvalSet",
    "JudgeConsistency",
    "JudgePool",
    "PromptfooConfig",
    "case_outcome",
    "check_assertion",
    "check_judged",
    "judge_consistency",
    "load_eval_set",
    "load_promptfoo",
    "run_case",
    "run_eval",
    "run_promptfoo",
    "skipped_run",
]
