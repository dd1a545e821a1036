"""The dashboard's prompt pages: an ``llm`` system's prompts, one prompt version, one eval run.

Each ``*_context`` function reads through the public functions of ``steward.llm.prompts`` and
``steward.llm.eval_runs`` and returns what its template shows. The unified diff and the two SVG
figures of an eval run (the pass-rate pair and the strip of cases) are built here, on the server,
so the pages need no script and fetch nothing. An unknown system, prompt, version or run raises
the domain's ``NotFoundError`` family, which the routes turn into the HTML error page (404).

>>> strip = case_strip_svg([CaseRow(1, "greets", "", True, "pass", "fail")])
>>> strip.startswith("<svg"), strip.count('class="cell')  # a baseline cell and a candidate cell
(True, 2)
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import escape

from steward.core import Steward
from steward.errors import NotFoundError
from steward.llm import eval_runs, prompts
from steward.llm.evals.assertions import AssertionResult
from steward.llm.evals.judges import UNANIMITY_FLOOR, JudgeConsistency
from steward.llm.evals.runner import CaseResult, EvalResult

__all__ = [
    "RUN_LIMIT",
    "VERDICT_COLORS",
    "CaseRow",
    "DiffLine",
    "RunRow",
    "VersionRow",
    "case_rows",
    "case_strip_svg",
    "diff_lines",
    "eval_run_context",
    "pass_rates_svg",
    "prompt_version_context",
    "prompts_context",
    "verdict",
]

#: The most eval runs a prompt page lists (newest first).
RUN_LIMIT = 200

#: The fill of a case cell by verdict: pass, fail, error, skipped, and a case a side did not run.
VERDICT_COLORS: dict[str, str] = {
    "pass": "#54a24b",
    "fail": "#e45756",
    "error": "#9d2b2b",
    "skipped": "#c9c9c9",
    "not run": "#ffffff",
}

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


# --- the rows the templates show --------------------------------------------------------------------


@dataclass(frozen=True)
class VersionRow:
    """One prompt version as a table row: short hash and commit, the model, who and when."""

    version: int
    sha256: str
    provider: str
    model: str
    registered_by: str
    registered_at: datetime
    commit: str
    dirty: bool | None
    labels: tuple[str, ...]

    @classmethod
    def of(cls, found: prompts.PromptVersion) -> VersionRow:
        """The row of a registered version."""
        commit = found.code.get("commit")
        return cls(
            version=found.version,
            sha256=found.sha256[:12],
            provider=str(found.spec.get("provider") or ""),
            model=str(found.spec.get("model") or ""),
            registered_by=found.registered_by,
            registered_at=found.registered_at,
            commit=str(commit)[:10] if commit else "",
            dirty=found.code.get("dirty"),
            labels=found.labels,
        )


@dataclass(frozen=True)
class RunRow:
    """One eval run as a table row: which version against which, the decision and its sentence."""

    id: int
    prompt: str
    version: int
    baseline_version: int | None
    baseline_label: str
    decision: str
    summary: str
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, run: eval_runs.EvalRun) -> RunRow:
        """The row of a stored run (its per-case results are not needed)."""
        return cls(
            id=run.id,
            prompt=run.prompt,
            version=run.version,
            baseline_version=run.baseline_version,
            baseline_label=run.baseline_label,
            decision=run.decision,
            summary=_decision_sentence(run),
            created_by=run.created_by,
            created_at=run.created_at,
        )


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff: ``kind`` is file, hunk, add, del or context; ``old`` and
    ``new`` are its line numbers in each file (None where it has none)."""

    kind: str
    text: str
    old: int | None = None
    new: int | None = None

    @property
    def marker(self) -> str:
        """The character unified diffs start the line with."""
        return {"add": "+", "del": "-", "context": " "}.get(self.kind, "")


@dataclass(frozen=True)
class CaseRow:
    """One case of an eval run with both verdicts: the candidate's failing assertions, the outputs."""

    index: int
    case_id: str
    description: str
    critical: bool
    baseline: str
    candidate: str
    failing: tuple[AssertionResult, ...] = ()
    baseline_failing: tuple[AssertionResult, ...] = ()
    error: str | None = None
    output: str | None = None
    baseline_output: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)

    @property
    def change(self) -> str:
        """``worse`` (the baseline passed, the candidate failed), ``better``, or ``""``."""
        failed = ("fail", "error")
        if self.baseline == "pass" and self.candidate in failed:
            return "worse"
        if self.candidate == "pass" and self.baseline in failed:
            return "better"
        return ""


@dataclass(frozen=True)
class Side:
    """The figures of one side of a run (candidate or baseline), recomputed from its cases."""

    name: str
    label: str
    result: EvalResult

    @property
    def judge(self) -> JudgeConsistency:
        return self.result.judge


# --- the pages ----------------------------------------------------------------------------------------


def prompts_context(steward: Steward, name: str) -> dict[str, Any]:
    """The prompts page: each prompt's versions newest first, label history and eval runs."""
    info = steward.system(name)
    store = steward.store
    entries = []
    for newest in prompts.list_prompts(store, name):
        versions = prompts.list_prompt_versions(store, name, newest.prompt)
        history = prompts.label_history(store, name, newest.prompt)
        runs = eval_runs.list_runs(store, name, newest.prompt, limit=RUN_LIMIT)
        entries.append(
            {
                "name": newest.prompt,
                "description": str(newest.spec.get("description") or ""),
                "path": newest.path,
                "versions": [VersionRow.of(found) for found in reversed(versions)],
                "history": list(reversed(history)),
                "runs": [RunRow.of(run) for run in runs],
            }
        )
    registered = {entry["name"] for entry in entries}
    declared = [str(item.get("name")) for item in info.config.get("prompts") or []]
    return {
        "system": info,
        "prompts": entries,
        "unregistered": [item for item in declared if item not in registered],
    }


def prompt_version_context(
    steward: Steward, name: str, prompt: str, version: str, against: str | None
) -> dict[str, Any]:
    """One prompt version: its file, a diff against ``against`` (default: the version before) and
    the eval runs it was the candidate or the baseline of."""
    info = steward.system(name)
    store = steward.store
    versions = prompts.list_prompt_versions(store, name, prompt)  # an unknown prompt: 404
    found = prompts.get_prompt(store, name, prompt, version.strip())
    if against is not None and against.strip():
        other: prompts.PromptVersion | None = prompts.get_prompt(
            store, name, prompt, against.strip()
        )
    else:
        earlier = [item for item in versions if item.version < found.version]
        other = earlier[-1] if earlier else None
    runs = eval_runs.list_runs(store, name, prompt, limit=RUN_LIMIT)
    return {
        "system": info,
        "prompt": prompt,
        "version": found,
        "row": VersionRow.of(found),
        "versions": [VersionRow.of(item) for item in reversed(versions)],
        "against": other,
        "diff": diff_lines(other, found) if other is not None else [],
        "runs": [
            RunRow.of(run) for run in runs if found.version in (run.version, run.baseline_version)
        ],
    }


def eval_run_context(steward: Steward, run_id: str) -> dict[str, Any]:
    """One eval run: the decision, both sides' figures, the judge's consistency and every case."""
    run = eval_runs.get_run(steward.store, _run_number(run_id))
    candidate = _result(run.result.get("candidate"), run)
    stored_baseline = run.result.get("baseline")
    baseline = _result(stored_baseline, run) if stored_baseline else None
    sides = [Side("candidate", f"v{run.version}", candidate)]
    if baseline is not None:
        label = f"v{run.baseline_version}" if run.baseline_version is not None else "baseline"
        sides.insert(0, Side("baseline", label, baseline))
    rows = case_rows(candidate, baseline)
    return {
        "run": run,
        "decision": _decision(run),
        "sides": sides,
        "figures": _figures(sides),
        "warnings": _judge_warnings(sides),
        "rows": rows,
        "has_baseline": baseline is not None,
        "rates_chart": pass_rates_svg([(f"{s.name} {s.label}", s.result.pass_rate) for s in sides]),
        "strip_chart": case_strip_svg(rows, with_baseline=baseline is not None) if rows else "",
        "options": dict(run.result.get("options") or {}),
    }


# --- pieces -------------------------------------------------------------------------------------------


def verdict(case: CaseResult | None) -> str:
    """A case's verdict in a word: pass, fail, error, skipped, or ``not run`` (no such case).

    >>> verdict(None), verdict(CaseResult("c", "", False, {}, "", None, [], None, None))
    ('not run', 'skipped')
    """
    if case is None:
        return "not run"
    if case.error:
        return "error"
    if case.passed is None:
        return "skipped"
    return "pass" if case.passed else "fail"


def case_rows(candidate: EvalResult, baseline: EvalResult | None) -> list[CaseRow]:
    """Every case of the candidate (then any the baseline ran alone), with both verdicts."""
    before = {case.case_id: case for case in baseline.cases} if baseline else {}
    seen: set[str] = set()
    rows: list[CaseRow] = []
    for case in candidate.cases:
        seen.add(case.case_id)
        rows.append(_row(len(rows) + 1, case, before.get(case.case_id), case, baseline is not None))
    for alone in baseline.cases if baseline else []:
        if alone.case_id not in seen:
            rows.append(_row(len(rows) + 1, alone, alone, None, True))
    return rows


def _row(
    index: int, case: CaseResult, old: CaseResult | None, new: CaseResult | None, paired: bool
) -> CaseRow:
    return CaseRow(
        index=index,
        case_id=case.case_id,
        description=case.description,
        critical=case.critical,
        baseline=verdict(old) if paired else "–",
        candidate=verdict(new),
        failing=_failing(new),
        baseline_failing=_failing(old),
        error=new.error if new else None,
        output=new.output if new else None,
        baseline_output=old.output if old else None,
        vars=dict(case.vars),
    )


def _failing(case: CaseResult | None) -> tuple[AssertionResult, ...]:
    return tuple(item for item in case.assertions if item.passed is False) if case else ()


def diff_lines(old: prompts.PromptVersion, new: prompts.PromptVersion) -> list[DiffLine]:
    """The unified diff of two versions' files, ``old`` to ``new``, line by line with numbers.

    Lines are compared without their endings, so a file that does not end in a newline diffs
    cleanly. Empty when the files are the same.
    """
    lines: list[DiffLine] = []
    old_number = new_number = 0
    diff = difflib.unified_diff(
        old.source.splitlines(),
        new.source.splitlines(),
        fromfile=f"{old.prompt} v{old.version}",
        tofile=f"{new.prompt} v{new.version}",
        lineterm="",
    )
    for position, text in enumerate(diff):
        if position < 2:  # the two file headers (a removed "-- x" line also starts with "---")
            lines.append(DiffLine("file", text))
            continue
        hunk = _HUNK.match(text)
        if hunk:
            old_number, new_number = int(hunk[1]), int(hunk[3])
            lines.append(DiffLine("hunk", text))
        elif text.startswith("+"):
            lines.append(DiffLine("add", text[1:], new=new_number))
            new_number += 1
        elif text.startswith("-"):
            lines.append(DiffLine("del", text[1:], old=old_number))
            old_number += 1
        else:
            lines.append(DiffLine("context", text[1:], old=old_number, new=new_number))
            old_number, new_number = old_number + 1, new_number + 1
    return lines


def pass_rates_svg(bars: Sequence[tuple[str, float | None]], *, width: int = 520) -> str:
    """Horizontal bars of pass rates on a fixed 0-100 % axis (so two runs compare at a glance).

    >>> svg = pass_rates_svg([("baseline v1", 0.75), ("candidate v2", None)])
    >>> svg.count('class="rate"'), "n/a" in svg
    (1, True)
    """
    label_width, bar_height, gap, top = 150, 18, 8, 8
    track = width - label_width - 60
    height = top + len(bars) * (bar_height + gap) + 18
    parts = [_open(width, height, "pass rate of each side", "pass-rates")]
    for index, (label, rate) in enumerate(bars):
        y = top + index * (bar_height + gap)
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 13}" text-anchor="end" font-size="12">'
            f"{escape(label)}</text>"
            f'<rect x="{label_width}" y="{y}" width="{track}" height="{bar_height}" fill="#eeeeee"/>'
        )
        known = rate is not None and math.isfinite(rate)
        if known:
            share = min(max(float(rate or 0.0), 0.0), 1.0)
            parts.append(
                f'<rect class="rate" x="{label_width}" y="{y}" width="{track * share:.1f}" '
                f'height="{bar_height}" fill="{VERDICT_COLORS["pass"]}">'
                f"<title>{escape(label)}: {share:.1%}</title></rect>"
            )
        text = f"{float(rate or 0.0):.0%}" if known else "n/a"
        parts.append(
            f'<text x="{label_width + track + 6}" y="{y + 13}" font-size="12">{text}</text>'
        )
    axis = top + len(bars) * (bar_height + gap) + 10
    for share in (0.0, 0.5, 1.0):
        x = label_width + track * share
        anchor = {0.0: "start", 0.5: "middle", 1.0: "end"}[share]
        parts.append(
            f'<text x="{x:.1f}" y="{axis}" text-anchor="{anchor}" font-size="10" '
            f'fill="#666">{share:.0%}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def case_strip_svg(
    rows: Sequence[CaseRow], *, with_baseline: bool = True, per_line: int = 50
) -> str:
    """Each case as a column of two cells, the baseline's verdict over the candidate's, coloured
    by ``VERDICT_COLORS``; a case that got worse is outlined, a critical one marked with a dot.
    Each column links to the case's row in the table (``#case-N``)."""
    cell, label_width, top = (20 if len(rows) <= 30 else 14), 76, 22
    sides = ("baseline", "candidate") if with_baseline else ("candidate",)
    band = len(sides) * cell + 14  # one line of cases: its cells and the gap below
    n_lines = max(1, math.ceil(len(rows) / per_line))
    width = label_width + min(max(len(rows), 1), per_line) * cell + 8
    height = top + n_lines * band + 20
    parts = [
        _open(max(width, 360), height, "verdict of each case, baseline over candidate", "cases")
    ]
    parts += _strip_legend()
    for line in range(n_lines):
        y0 = top + line * band
        for offset, side in enumerate(sides):
            parts.append(
                f'<text x="{label_width - 6}" y="{y0 + offset * cell + 11}" text-anchor="end" '
                f'font-size="10">{side}</text>'
            )
    for position, row in enumerate(rows):
        x = label_width + (position % per_line) * cell
        y = top + (position // per_line) * band
        parts.append(_strip_column(row, sides, x, y, cell))
    parts.append("</svg>")
    return "".join(parts)


def _strip_column(row: CaseRow, sides: Sequence[str], x: int, y: int, cell: int) -> str:
    title = f"{row.case_id}{' (critical)' if row.critical else ''}: " + ", ".join(
        f"{side} {getattr(row, side)}" for side in sides
    )
    parts = [f'<a href="#case-{row.index}"><title>{escape(title)}</title>']
    for offset, side in enumerate(sides):
        state = getattr(row, side)
        parts.append(
            f'<rect class="cell {escape(state.replace(" ", "-"))}" x="{x}" y="{y + offset * cell}" '
            f'width="{cell - 2}" height="{cell - 2}" fill="{VERDICT_COLORS.get(state, "#ffffff")}" '
            f'stroke="#999" stroke-width="0.5"/>'
        )
    if row.change == "worse":
        parts.append(
            f'<rect class="worse" x="{x - 1}" y="{y - 1}" width="{cell}" '
            f'height="{len(sides) * cell}" fill="none" stroke="#111" stroke-width="1.5"/>'
        )
    if row.critical:
        parts.append(
            f'<circle cx="{x + (cell - 2) / 2}" cy="{y + len(sides) * cell + 3}" r="2" '
            'fill="#111"/>'
        )
    parts.append("</a>")
    return "".join(parts)


def _strip_legend() -> list[str]:
    parts, x = [], 4
    for name, color in VERDICT_COLORS.items():
        parts.append(
            f'<rect x="{x}" y="4" width="10" height="10" fill="{color}" stroke="#999" '
            f'stroke-width="0.5"/><text x="{x + 13}" y="13" font-size="10">{name}</text>'
        )
        x += 22 + 6 * len(name)
    return parts


def _open(width: int, height: int, title: str, css: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{escape(title)}</title>'
    )


def _run_number(run_id: str) -> int:
    text = run_id.strip().lstrip("#")
    if not text.isdigit() or len(text) > 18:
        raise NotFoundError(
            f"there is no eval run {run_id!r}: run ids are whole numbers such as 12; see "
            "`steward eval list`"
        )
    return int(text)


def _result(data: Any, run: eval_runs.EvalRun) -> EvalResult:
    """A stored side of the run; an empty result when the run kept none."""
    if isinstance(data, Mapping) and "eval_set" in data:
        return EvalResult.from_dict(data)
    return EvalResult(run.eval_set, run.eval_set_sha256, run.provider, [])


def _decision(run: eval_runs.EvalRun) -> dict[str, Any]:
    gate = dict(run.summary.get("gate") or {})
    return {
        "word": run.decision,
        "level": {"pass": "green", "fail": "red"}.get(run.decision, "amber"),
        "summary": _decision_sentence(run),
        "reasons": [str(reason) for reason in gate.get("reasons") or []],
        "worse": gate.get("worse"),
        "better": gate.get("better"),
        "n_pairs": gate.get("n_pairs"),
        "p_value": _format(gate.get("p_value"), ".3g"),
        "alpha": gate.get("alpha"),
        "test": str(gate.get("test") or ""),
        "skipped": gate.get("skipped"),
        "has_gate": bool(gate),
    }


def _decision_sentence(run: eval_runs.EvalRun) -> str:
    gate = run.summary.get("gate") or {}
    if gate.get("summary"):
        return str(gate["summary"])
    rate = (run.summary.get("candidate") or {}).get("pass_rate")
    return f"{run.decision}: no gate decided this run; candidate pass rate {_format(rate, '.0%')}"


def _figures(sides: Sequence[Side]) -> list[tuple[str, list[str]]]:
    """Rows of (figure, one text per side) for the side-by-side table."""
    rows: list[tuple[str, Any, str]] = [
        ("pass rate", lambda r: r.pass_rate, ".1%"),
        ("passed", lambda r: r.n_passed, "d"),
        ("failed", lambda r: r.n_failed, "d"),
        ("skipped", lambda r: r.n_skipped, "d"),
        ("critical failed", lambda r: len(r.failed_critical), "d"),
        ("input tokens", lambda r: r.input_tokens, ",d"),
        ("output tokens", lambda r: r.output_tokens, ",d"),
        ("cost (US$)", lambda r: r.cost, ".4f"),
        ("latency p50 (ms)", lambda r: r.latency_p50_ms, ",.1f"),
        ("latency max (ms)", lambda r: r.latency_max_ms, ",.1f"),
        ("judged assertions", lambda r: r.judge.judged, "d"),
        ("judge unanimity", lambda r: r.judge.unanimity, ".0%"),
        ("judge kappa", lambda r: r.judge.kappa, ".2f"),
    ]
    return [(name, [_format(get(side.result), spec) for side in sides]) for name, get, spec in rows]


def _judge_warnings(sides: Sequence[Side]) -> list[str]:
    warnings = []
    for side in sides:
        judge = side.judge
        if judge.inconsistent:
            warnings.append(
                f"The judge disagreed with itself on the {side.name} ({side.label}): unanimous on "
                f"{_format(judge.unanimity, '.0%')} of {judge.judged} judged assertions, below "
                f"{UNANIMITY_FLOOR:.0%} (kappa {_format(judge.kappa, '.2f')}). Judged verdicts "
                "are noisy: ask it more times (judge.repeats) or use a steadier judge model."
            )
    return warnings


def _format(value: Any, spec: str) -> str:
    if value is None or isinstance(value, bool):
        return "–" if value is None else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "–"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)
