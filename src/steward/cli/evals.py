"""``steward eval run|show|list``: the eval gate for prompt changes, and promptfoo configurations.

``steward eval run SYSTEM --prompt NAME --version 2 --against production`` exits 0 when the
candidate passes the gate, 1 when it fails, and 2 for a usage error (an unknown system, a missing
eval file, a bad flag), so it drops into any CI. ``steward eval run promptfooconfig.yaml`` runs an
existing promptfoo configuration's deterministic assertions and exits 0 when every case passes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from steward.cli.main import console, error_console, get_steward
from steward.errors import StewardError
from steward.llm import eval_runs
from steward.llm.evals.judges import DEFAULT_REPEATS
from steward.llm.evals.promptfoo import run_promptfoo
from steward.llm.evals.runner import CaseResult, EvalResult
from steward.llm.evaluate import run_gate
from steward.llm.providers import make_provider

__all__ = ["eval_group", "eval_list", "eval_run", "eval_show"]

#: Exit codes: the gate passed, the gate failed, the command was used wrongly.
PASSED, FAILED, USAGE = 0, 1, 2


@click.group("eval")
def eval_group() -> None:
    """Run eval sets on prompt versions and gate changes on the results."""


@contextmanager
def _usage_errors() -> Iterator[None]:
    """A mistake the user can fix exits 2, so CI can tell it from a failed gate (exit 1)."""
    try:
        yield
    except StewardError as error:
        error_console.print(f"[bold red]error:[/] {escape(str(error))}", markup=True)
        sys.exit(USAGE)


@eval_group.command("run")
@click.argument("target")
@click.option("--prompt", "prompt", default=None, help="The prompt of SYSTEM to evaluate.")
@click.option("--version", "version", default="latest", show_default=True, help="Candidate.")
@click.option("--against", default="production", show_default=True, help="Baseline label.")
@click.option("--no-baseline", is_flag=True, help="Judge the candidate alone.")
@click.option("--eval", "eval_file", type=click.Path(path_type=Path), default=None)
@click.option("--repeats", type=click.IntRange(1, 15), default=None, help="Judge repeats.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the stored run as JSON.")
@click.option(
    "--judge",
    default=None,
    help="For a promptfoo file: the judge provider (e.g. openai:chat:MODEL with OPENAI_BASE_URL).",
)
@click.pass_context
def eval_run(
    ctx: click.Context,
    target: str,
    prompt: str | None,
    version: str,
    against: str,
    no_baseline: bool,
    eval_file: Path | None,
    repeats: int | None,
    alpha: float | None,
    as_json: bool,
    judge: str | None,
) -> None:
    """Run the eval set of PROMPT of TARGET (a system), or a promptfoo configuration file."""
    if prompt is None:
        if not Path(target).is_file():
            raise click.UsageError(
                f"{target!r} is neither a promptfoo configuration file nor, without --prompt, "
                "a system; give --prompt NAME to evaluate a prompt of system TARGET"
            )
        ctx.exit(_run_promptfoo(Path(target), repeats, judge))
    with _usage_errors():
        steward = get_steward(ctx)
        declared = steward.system(target).declared
        with _progress() as report:
            outcome = run_gate(
                steward.store,
                declared,
                prompt,
                base_dir=steward.settings.config_path.parent,
                actor=steward.actor,
                candidate=version,
                against=None if no_baseline else against,
                eval_file=eval_file,
                repeats=repeats,
                alpha=alpha,
                progress=report,
            )
    if as_json:
        click.echo(json.dumps(outcome.run.to_dict(), indent=2, default=str))
    else:
        _print_cases(outcome.candidate, outcome.baseline)
        _print_judge(outcome.candidate)
        colour = "green" if outcome.decision.passed else "red"
        console.print(f"[{colour}]{escape(outcome.decision.summary())}[/]")
        console.print(
            f"stored as eval run #{outcome.run.id} (`steward eval show {outcome.run.id}`)"
        )
    ctx.exit(PASSED if outcome.decision.passed else FAILED)


def _run_promptfoo(path: Path, repeats: int | None, judge_spec: str | None) -> int:
    with _usage_errors():
        judge = make_provider(judge_spec) if judge_spec else None
        results = run_promptfoo(path, judge=judge, repeats=repeats or DEFAULT_REPEATS)
    failed = False
    for result in results:
        console.print(f"[bold]{escape(result.label)}[/] on {escape(result.provider)}")
        _print_cases(result, None)
        rate = "n/a" if result.pass_rate is None else f"{result.pass_rate:.0%}"
        console.print(
            f"{result.n_passed} passed, {result.n_failed} failed, {result.n_skipped} skipped "
            f"(pass rate {rate})"
        )
        failed = failed or result.n_failed > 0
    return FAILED if failed else PASSED


@contextmanager
def _progress() -> Iterator[Any]:
    with Progress(console=error_console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def report(which: str, done: int, total: int) -> None:
            if which not in tasks:
                tasks[which] = bar.add_task(f"{which} cases", total=total)
            bar.update(tasks[which], completed=done)

        yield report


def _verdict(case: CaseResult | None) -> str:
    if case is None:
        return "–"
    if case.passed is None:
        return "[dim]skipped[/]"
    return "[green]pass[/]" if case.passed else "[red]FAIL[/]"


def _print_cases(candidate: EvalResult, baseline: EvalResult | None) -> None:
    before = {case.case_id: case for case in baseline.cases} if baseline else {}
    columns = ["case", *(["baseline"] if baseline else []), "candidate", "why"]
    table = Table(*columns)
    for case in candidate.cases:
        failing = [
            f"{result.type}: {result.reason}"
            for result in case.assertions
            if result.passed is False or (result.passed is None and result.reason)
        ]
        why = case.error or "; ".join(failing)
        name = case.case_id + (" [bold](critical)[/]" if case.critical else "")
        cells = [name, *([_verdict(before.get(case.case_id))] if baseline else [])]
        table.add_row(*cells, _verdict(case), escape(why[:160]))
    console.print(table)


def _print_judge(result: EvalResult) -> None:
    judge = result.judge
    if not judge.judged:
        return
    kappa = "n/a" if judge.kappa is None else f"{judge.kappa:.2f}"
    line = (
        f"judge agreement: {judge.unanimity:.0%} of {judge.judged} judged assertions unanimous "
        f"over {result.repeats} repeats (Fleiss' kappa {kappa})"
    )
    if judge.inconsistent:
        line += "; [bold yellow]the judge is inconsistent[/]: its verdicts are close to chance"
    console.print(line)


@eval_group.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Every case, assertion and repeat as JSON.")
@click.pass_context
def eval_show(ctx: click.Context, run_id: int, as_json: bool) -> None:
    """Show a stored eval run: per-case results against the baseline, and the decision."""
    run = eval_runs.get_run(get_steward(ctx).store, run_id)
    if as_json:
        click.echo(json.dumps(run.to_dict(), indent=2, default=str))
        return
    candidate = EvalResult.from_dict(run.result["candidate"])
    baseline_data = run.result.get("baseline")
    baseline = EvalResult.from_dict(baseline_data) if baseline_data else None
    console.print(
        f"[bold]eval run #{run.id}[/]: {run.system} {run.prompt} v{run.version} against "
        f"{run.baseline_label or 'nothing'}"
        f"{' (v' + str(run.baseline_version) + ')' if run.baseline_version else ''}, "
        f"{run.created_at:%Y-%m-%d %H:%M} by {run.created_by}"
    )
    _print_cases(candidate, baseline)
    _print_judge(candidate)
    console.print(escape(str(run.summary["gate"]["summary"])))


@eval_group.command("list")
@click.argument("system", required=False)
@click.option("--prompt", default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.pass_context
def eval_list(ctx: click.Context, system: str | None, prompt: str | None, limit: int) -> None:
    """Stored eval runs, newest first."""
    runs = eval_runs.list_runs(get_steward(ctx).store, system, prompt, limit)
    table = Table("run", "when", "system", "prompt", "version", "against", "decision", "pass rate")
    for run in runs:
        rate = run.summary.get("candidate", {}).get("pass_rate")
        table.add_row(
            f"#{run.id}",
            f"{run.created_at:%Y-%m-%d %H:%M}",
            run.system,
            run.prompt,
            f"v{run.version}",
            f"{run.baseline_label} (v{run.baseline_version})" if run.baseline_version else "–",
            run.decision,
            "n/a" if rate is None else f"{rate:.0%}",
        )
    console.print(table)
