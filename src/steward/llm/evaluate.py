"""Running a prompt's eval set on a candidate version and its baseline, deciding, and storing the run.

``run_gate`` is what ``steward eval run SYSTEM --prompt NAME --version 2 --against production``
does: it reads the eval set the prompt declares in ``steward.yaml`` (or the one given), runs it on
both versions through each version's own provider and model, lets ``steward.llm.gate`` decide,
and stores the run with every case, assertion and repeat (``steward.llm.eval_runs``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from steward.errors import ConfigError, UnknownAliasError
from steward.llm import eval_runs, prompts
from steward.llm.evals.cases import load_eval_set
from steward.llm.evals.judges import DEFAULT_REPEATS
from steward.llm.evals.runner import EvalResult, run_eval
from steward.llm.gate import GateDecision, GateOptions, decide, read_gate_options
from steward.llm.providers import make_provider
from steward.store import Store
from steward.workspace.config import SystemConfig

__all__ = ["GateOutcome", "eval_set_path", "judge_provider", "prompt_provider", "run_gate"]


@dataclass(frozen=True)
class GateOutcome:
    run: eval_runs.EvalRun
    decision: GateDecision
    candidate: EvalResult
    baseline: EvalResult | None


def run_gate(
    store: Store,
    declared: SystemConfig,
    prompt: str,
    *,
    base_dir: Path,
    actor: str,
    candidate: int | str = "latest",
    against: str | None = "production",
    eval_file: Path | None = None,
    repeats: int | None = None,
    alpha: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> GateOutcome:
    """Run, decide and store; ``candidate`` ``"latest"`` is the newest registered version."""
    path = eval_file or eval_set_path(declared, prompt, base_dir)
    eval_set = load_eval_set(path)
    options = read_gate_options(path, alpha)
    version = _version(store, declared.name, prompt, candidate)
    baseline_version = _baseline(store, declared.name, prompt, against)
    judge = judge_provider(declared)
    count = repeats or (declared.judge.repeats if declared.judge else DEFAULT_REPEATS)

    def run(which: prompts.PromptVersion, name: str) -> EvalResult:
        return run_eval(
            eval_set,
            which.parsed.request,
            prompt_provider(declared, which),
            judge=judge,
            repeats=count,
            progress=(lambda done, total: progress(name, done, total)) if progress else None,
            label=f"v{which.version}",
        )

    result = run(version, "candidate")
    baseline = run(baseline_version, "baseline") if baseline_version is not None else None
    decision = decide(result, baseline, options)
    stored = eval_runs.save_run(
        store,
        system=declared.name,
        prompt=prompt,
        version=version.version,
        baseline_version=baseline_version.version if baseline_version else None,
        baseline_label=against or "",
        eval_set=str(path),
        eval_set_sha256=eval_set.sha256,
        provider=result.provider,
        decision="pass" if decision.passed else "fail",
        summary=_summary(decision, result, baseline),
        result=_result(result, baseline, options),
        actor=actor,
    )
    return GateOutcome(stored, decision, result, baseline)


def _baseline(
    store: Store, system: str, prompt: str, against: str | None
) -> prompts.PromptVersion | None:
    if against is None:
        return None
    try:
        return prompts.get_prompt(store, system, prompt, against)
    except UnknownAliasError:  # the label is not set yet: nothing to compare with
        return None


def _result(
    candidate: EvalResult, baseline: EvalResult | None, options: GateOptions
) -> dict[str, Any]:
    return {
        "candidate": candidate.to_dict(),
        "baseline": baseline.to_dict() if baseline else None,
        "options": asdict(options),
    }


def eval_set_path(declared: SystemConfig, prompt: str, base_dir: Path) -> Path:
    """The eval set a prompt declares in ``steward.yaml`` (``evals:``), resolved."""
    found = {item.name: item for item in declared.prompts}
    if prompt not in found:
        names = ", ".join(sorted(found)) or "none"
        raise ConfigError(
            f"system {declared.name!r} declares no prompt {prompt!r} in steward.yaml (its "
            f"prompts: {names})"
        )
    if not found[prompt].evals:
        raise ConfigError(
            f"prompt {prompt!r} of {declared.name!r} names no eval set; add `evals: FILE` to it "
            "in steward.yaml, or pass --eval FILE"
        )
    path = Path(str(found[prompt].evals))
    return path if path.is_absolute() else base_dir / path


def prompt_provider(declared: SystemConfig, version: prompts.PromptVersion) -> Any:
    """The provider a prompt version names, from the system's ``providers:`` or the built-ins."""
    providers = {name: item.model_dump() for name, item in declared.providers.items()}
    return make_provider(version.parsed.provider, providers)


def judge_provider(declared: SystemConfig) -> Any:
    """The system's judge for ``llm-rubric`` and ``similar``, or None (those are then skipped)."""
    if declared.judge is None:
        return None
    providers = {name: item.model_dump() for name, item in declared.providers.items()}
    spec: dict[str, Any] = {"id": declared.judge.provider}
    if declared.judge.model:
        spec["model"] = declared.judge.model
    return make_provider(spec, providers)


def _version(store: Store, system: str, prompt: str, reference: int | str) -> prompts.PromptVersion:
    if reference == "latest":
        versions = prompts.list_prompt_versions(store, system, prompt)
        return versions[-1]
    return prompts.get_prompt(store, system, prompt, reference)


def _summary(
    decision: GateDecision, candidate: EvalResult, baseline: EvalResult | None
) -> dict[str, Any]:
    def figures(result: EvalResult) -> dict[str, Any]:
        return {
            "version": result.label,
            "pass_rate": result.pass_rate,
            "passed": result.n_passed,
            "failed": result.n_failed,
            "skipped": result.n_skipped,
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "cost": result.cost,
            "latency_p50_ms": result.latency_p50_ms,
            "judge": result.judge.to_dict(),
        }

    return {
        "gate": decision.to_dict(),
        "candidate": figures(candidate),
        "baseline": figures(baseline) if baseline else None,
    }
