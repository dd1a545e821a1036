"""The ``llm_outputs`` monitor: an LLM system's answers watched like features.

For a system of task ``llm`` it reads the window's ``llm_call`` events and a reference window's,
describes each call (``steward.llm.descriptors``: length in tokens, characters and words, refusals,
JSON validity, sentiment, keyword counts, latency, cost, errors and finish reasons) and compares
the two sides with the drift rule of the input features (``steward.data.drift.compare`` in exact
mode, default settings): a descriptor alarms only when its change is significant for the sample
sizes after Benjamini-Hochberg across every descriptor and method, *and* larger than the practical
floor plus the statistic's noise at those sizes. The 0/1 descriptors (``refused``, ``json_valid``,
``error``) and ``finish_reason`` are compared as categories.

When the answers' texts are kept, one more test compares them whole: the energy distance between
their WordLlama embeddings (``steward.llm.embedding_drift``), which sees a change of subject or
tone that lengths and keywords miss. Its permutation p-value cannot join the descriptors'
Benjamini-Hochberg set (its smallest value, 1/201, would rarely pass a correction over some twenty
tests), so it alarms on its own at ``EMBEDDING_ALPHA`` (0.005) *and* only above its practical floor
(``DEFAULT_FLOOR``). At 0.05 it raised the whole monitor's false alarms on unchanged outputs from
0 to 14 in 200 runs (the descriptors' BH set gave none); at 0.005 (the smallest p-value of 200
relabellings passes, nothing else) the monitor gave 1 in 200 (0.5%, bound 2.75%), the features'
own worst measured rate per 25-column check. ``details["embedding"]`` holds its distance,
coefficient, p-value and threshold, or why it was skipped (texts hashed or dropped, too few
answers).

The reference is, by default, the window of the same length just before the current one. The
system's ``outputs:`` in steward.yaml can name another, and add refusal patterns and keywords::

    outputs:
      reference_window: 7d          # the 7 days before the window's start
      reference_start: 2026-11-01   # or: a fixed baseline from this moment (reference_window long)
      refusal_patterns: ["I am not in a position to"]   # added to DEFAULT_REFUSALS
      keywords: [refund, free trial]
      json_expected: true

Calls are judged per prompt version and model (``prompt``, ``prompt_version``,
``request_model``) when every such group has at least ``MIN_ROWS`` calls on both sides; otherwise
(a new prompt version, a thin canary) all calls are judged together, so the change a new version
brings is still seen. A side with fewer than ``MIN_ROWS`` calls gives ``not_enough_data``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa

from steward._util.frames import to_arrow_table
from steward._util.times import parse_window
from steward.data.drift import DriftReport, compare
from steward.errors import ConfigError, InvalidInputError
from steward.llm.descriptors import (
    DEFAULT_REFUSALS,
    RATE_DESCRIPTORS,
    check_options,
    describe_calls,
)
from steward.llm.embedding_drift import embedding_drift
from steward.monitoring.result import MIN_ROWS, MonitorResult, not_enough_data
from steward.monitoring.window import MonitorWindow

__all__ = [
    "EMBEDDING_ALPHA",
    "GROUP_COLUMNS",
    "LLMOutputMonitor",
    "OutputSettings",
    "output_results",
]

#: What a group of calls shares: the prompt, its version and the model asked for.
GROUP_COLUMNS: Final = ("prompt", "prompt_version", "request_model")
#: The level of the answers' embedding test, which alarms apart from the descriptors' BH set.
EMBEDDING_ALPHA: Final = 0.005
_NAME: Final = "llm_outputs"
_SETTING_KEYS: Final = frozenset(
    {"reference_window", "reference_start", "refusal_patterns", "keywords", "json_expected"}
)
_MISSING: Final = {
    "output_tokens": "no call reported its output tokens",
    "latency_ms": "no call reported its latency",
    "cost": "no call was priced (no price covers its model)",
    "error": "no call says whether it failed",
    "finish_reason": "no call reported why its answer ended",
}
_TEXT_MISSING: Final = (
    "no answer text: the texts are hashed or dropped (call_text), or every call failed"
)


@dataclass(frozen=True)
class OutputSettings:
    """How a system's outputs are watched: the reference and what to look for in the answers.

    ``reference_window`` (default: the current window's length) is how long the reference is;
    without ``reference_start`` it ends where the current window starts, with it it starts
    there (a fixed baseline, which sees a slow creep that adjacent windows miss).
    ``refusal_patterns`` extend ``DEFAULT_REFUSALS``.

    >>> from datetime import datetime, UTC
    >>> settings = OutputSettings.from_config({"reference_window": "7d"})
    >>> settings.reference_span(datetime(2026, 11, 8, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC))[0]
    datetime.datetime(2026, 11, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """

    reference_window: timedelta | None = None
    reference_start: datetime | None = None
    refusal_patterns: tuple[str, ...] = DEFAULT_REFUSALS
    keywords: tuple[str, ...] = ()
    json_expected: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> OutputSettings:
        """The settings of a system's ``outputs:`` mapping (as steward.yaml gives it), or the
        defaults for None."""
        if config is None:
            return cls()
        if not isinstance(config, Mapping):
            raise ConfigError(
                f"outputs: expected a mapping of {sorted(_SETTING_KEYS)}, got {config!r}"
            )
        unknown = sorted(set(config) - _SETTING_KEYS)
        if unknown:
            raise ConfigError(
                f"outputs: unknown key(s) {unknown}; the keys are {sorted(_SETTING_KEYS)}"
            )
        window = config.get("reference_window")
        start = config.get("reference_start")
        patterns = (*DEFAULT_REFUSALS, *_texts(config, "refusal_patterns"))
        keywords = _texts(config, "keywords")
        try:
            check_options(patterns, keywords)
        except InvalidInputError as error:
            raise ConfigError(f"outputs: {error}") from None
        return cls(
            reference_window=None if window is None else _duration(window),
            reference_start=None if start is None else _moment(start),
            refusal_patterns=patterns,
            keywords=keywords,
            json_expected=_flag(config.get("json_expected", False)),
        )

    def reference_span(self, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        """The reference window ``[from, to)`` for the current window ``[start, end)``."""
        length = self.reference_window or (end - start)
        if self.reference_start is None:
            return start - length, start
        return self.reference_start, min(self.reference_start + length, start)


class LLMOutputMonitor:
    """Drift of an LLM system's answers (length, refusals, JSON, tone, cost, latency, errors)."""

    name = _NAME

    def run(self, window: MonitorWindow) -> list[MonitorResult]:
        """One result per group of calls (or for all calls) of an ``llm`` system; none otherwise."""
        if window.info.task != "llm":
            return []
        settings = OutputSettings.from_config(window.info.config.get("outputs"))
        span = settings.reference_span(window.start, window.end)
        current = window.events.scan("llm_call", window.system, window.start, window.end)
        if not span[0] < span[1]:
            text = (
                f"no reference: the outputs reference_start ({span[0].isoformat()}) is not before "
                f"the window's start ({window.start.isoformat()}); pick an earlier baseline"
            )
            return [not_enough_data(window.system, _NAME, window.start, window.end, text)]
        reference = window.events.scan("llm_call", window.system, *span)
        return output_results(
            window.system, (window.start, window.end), span, reference, current, settings
        )


def output_results(
    system: str,
    window: tuple[datetime, datetime],
    reference_window: tuple[datetime, datetime],
    reference: pa.Table | pd.DataFrame,
    current: pa.Table | pd.DataFrame,
    settings: OutputSettings | None = None,
) -> list[MonitorResult]:
    """The ``llm_outputs`` results of ``current`` calls against ``reference`` calls.

    ``window`` and ``reference_window`` are the ``[start, end)`` the calls came from (they label
    the results). Each result's ``details`` hold, per descriptor and method, the statistic, the
    p-value (raw and adjusted), the threshold and whether it alarmed (``results``), a summary per
    descriptor (``descriptors``: means, or shares for categories), and the group judged.
    """
    settings = settings or OutputSettings()
    reference_table, current_table = _table(reference, "reference"), _table(current, "current")
    n_reference, n_current = reference_table.num_rows, current_table.num_rows
    if n_current < MIN_ROWS or n_reference < MIN_ROWS:
        text = (
            f"{n_current} LLM calls in the window and {n_reference} in the reference "
            f"({_span_text(reference_window)}); the output monitor needs {MIN_ROWS} on each side"
        )
        return [not_enough_data(system, _NAME, *window, text)]
    described = _describe(reference_table, settings), _describe(current_table, settings)
    texts = (
        _answer_texts(reference_table, described[0]),
        _answer_texts(current_table, described[1]),
    )
    keys = _group_keys(reference_table), _group_keys(current_table)
    context = _Context(system, window, reference_window)
    groups = _comparable_groups(*keys)
    if groups is None:
        sizes = _group_sizes(*keys)
        label = sizes[0]["group"] if len(sizes) == 1 else "all calls"
        return [_judge(context, label, described, sizes if len(sizes) > 1 else [], texts)]
    results = []
    for group in groups:
        masks = [key == group for key in keys[0]], [key == group for key in keys[1]]
        chosen = described[0][masks[0]], described[1][masks[1]]
        chosen_texts = (
            [text for text, keep in zip(texts[0], masks[0], strict=True) if keep],
            [text for text, keep in zip(texts[1], masks[1], strict=True) if keep],
        )
        results.append(_judge(context, _group_label(group), chosen, [], chosen_texts))
    return results


# --- groups --------------------------------------------------------------------------------------

_Key = tuple[Any, ...]


@dataclass(frozen=True)
class _Context:
    system: str
    window: tuple[datetime, datetime]
    reference_window: tuple[datetime, datetime]


def _table(calls: pa.Table | pd.DataFrame, side: str) -> pa.Table:
    return to_arrow_table(calls, f"the {side} calls")


def _describe(table: pa.Table, settings: OutputSettings) -> pd.DataFrame:
    return describe_calls(
        table,
        refusal_patterns=settings.refusal_patterns,
        keywords=settings.keywords,
        json_expected=settings.json_expected,
    )


def _group_keys(table: pa.Table) -> list[_Key]:
    columns = [
        table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows
        for name in GROUP_COLUMNS
    ]
    return [tuple(_plain(value) for value in row) for row in zip(*columns, strict=True)]


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.integer | float) and float(value).is_integer():
        return int(value)
    return value


def _comparable_groups(reference: list[_Key], current: list[_Key]) -> list[_Key] | None:
    """The groups to judge one by one, or None to judge all calls together."""
    counts = Counter(reference), Counter(current)
    groups = sorted(set(counts[0]) | set(counts[1]), key=str)
    if len(groups) < 2:
        return None
    enough = all(min(counts[0][g], counts[1][g]) >= MIN_ROWS for g in groups)
    return groups if enough else None


def _group_label(key: _Key) -> dict[str, Any]:
    return dict(zip(("prompt", "prompt_version", "model"), key, strict=True))


def _group_sizes(reference: list[_Key], current: list[_Key]) -> list[dict[str, Any]]:
    counts = Counter(reference), Counter(current)
    return [
        {"group": _group_label(g), "n_reference": counts[0][g], "n_current": counts[1][g]}
        for g in sorted(set(counts[0]) | set(counts[1]), key=str)
    ]


# --- judging one group ---------------------------------------------------------------------------


def _judge(
    context: _Context,
    group: dict[str, Any] | str,
    described: tuple[pd.DataFrame, pd.DataFrame],
    pooled: list[dict[str, Any]],
    texts: tuple[list[str | None], list[str | None]],
) -> MonitorResult:
    reference, current = described
    kept, skipped = _comparable_columns(reference, current)
    label = _label_text(group)
    if not kept:
        text = f"no output descriptor has values on both sides ({label}): {skipped}"
        return not_enough_data(context.system, _NAME, *context.window, text)
    report = compare(
        reference[kept],
        current[kept],
        columns=kept,
        categorical=[name for name in kept if name in RATE_DESCRIPTORS],
    )
    summaries = {name: _summary(reference[name], current[name], name) for name in kept}
    alarmed = report.alarmed_columns
    for name in kept:
        summaries[name]["alarm"] = name in alarmed
    embedding = _embedding_test(*texts)
    details: dict[str, Any] = {
        "group": group,
        "n_reference": len(reference),
        "n_current": len(current),
        "reference_window": [moment.isoformat() for moment in context.reference_window],
        "alarmed_descriptors": alarmed,
        "descriptors": summaries,
        "results": _results(report),
        "skipped_descriptors": skipped,
        "alpha": report.alpha,
        "correction": report.correction,
        "embedding": embedding,
    }
    if pooled:
        details["groups"] = pooled
    if alarmed or embedding.get("alarm"):
        moved = [_moved(name, summaries[name]) for name in alarmed]
        if embedding.get("alarm"):
            moved.append(_embedding_moved(embedding))
        text = f"LLM outputs changed ({label}): {'; '.join(moved)}"
        return MonitorResult(context.system, _NAME, *context.window, "breach", text, details)
    text = (
        f"no change in {len(kept)} output descriptors"
        f"{'' if 'skipped' in embedding else ' or the answer embeddings'} over {len(current)} "
        f"calls ({label}) against {len(reference)} reference calls"
    )
    return MonitorResult(context.system, _NAME, *context.window, "ok", text, details)


# --- the answers' embeddings ---------------------------------------------------------------------


def _answer_texts(table: pa.Table, described: pd.DataFrame) -> list[str | None]:
    """Each call's answer, or None where the descriptors found none (failed, hashed, dropped)."""
    has_text = described["output_chars"].notna().tolist()
    return [
        text if present else None
        for text, present in zip(table.column("output_text").to_pylist(), has_text, strict=True)
    ]


def _embedding_test(reference: list[str | None], current: list[str | None]) -> dict[str, Any]:
    """The embedding drift of the answers as result details, or why it was skipped."""
    kept = (
        [text for text in reference if text is not None],
        [text for text in current if text is not None],
    )
    short = [
        f"{len(texts)} answer texts in the {side}"
        for side, texts in zip(("reference", "current"), kept, strict=True)
        if len(texts) < MIN_ROWS
    ]
    if short:
        reason = f"{' and '.join(short)}; it needs {MIN_ROWS} a side"
        if any(not texts for texts in kept):
            reason += f" ({_TEXT_MISSING})"
        return {"skipped": reason}
    try:
        found = embedding_drift(*kept, alpha=EMBEDDING_ALPHA)
    except ConfigError as error:  # wordllama missing: the descriptors still run
        return {"skipped": str(error)}
    return {"method": "energy distance of WordLlama embeddings", **found.to_dict()}


def _embedding_moved(embedding: Mapping[str, Any]) -> str:
    return (
        f"answer embeddings moved (energy coefficient {embedding['coefficient']:.2g} > "
        f"{embedding['threshold']:.2g}, p={embedding['p_value']:.3g})"
    )


def _comparable_columns(
    reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[list[str], dict[str, str]]:
    kept: list[str] = []
    skipped: dict[str, str] = {}
    for name in reference.columns:
        empty = [
            side
            for side, frame in (("reference", reference), ("current", current))
            if frame[name].notna().sum() == 0
        ]
        if empty:
            reason = _MISSING.get(name, _TEXT_MISSING)
            skipped[name] = f"no values in the {' and '.join(empty)} calls: {reason}"
        else:
            kept.append(name)
    return kept, skipped


def _summary(reference: pd.Series, current: pd.Series, name: str) -> dict[str, Any]:
    found: dict[str, Any] = {
        "n_reference": int(reference.notna().sum()),
        "n_current": int(current.notna().sum()),
    }
    if reference.dtype == object:
        found["kind"] = "categorical"
        found["reference"] = _shares(reference)
        found["current"] = _shares(current)
        return found
    found["kind"] = "rate" if name in RATE_DESCRIPTORS else "numeric"
    found["reference"] = _finite(reference.mean())
    found["current"] = _finite(current.mean())
    return found


def _shares(values: pd.Series) -> dict[str, float]:
    counted = values.dropna().value_counts(normalize=True)
    return {str(category): round(float(share), 6) for category, share in counted.items()}


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _results(report: DriftReport) -> list[dict[str, Any]]:
    rows = report.to_dict()["results"]
    return [
        {("descriptor" if key == "column" else key): value for key, value in row.items()}
        for row in rows
    ]


def _moved(name: str, summary: Mapping[str, Any]) -> str:
    before, after = summary["reference"], summary["current"]
    if summary["kind"] == "categorical":
        changed = max(
            set(before) | set(after), key=lambda c: abs(after.get(c, 0.0) - before.get(c, 0.0))
        )
        return f"{name} {changed} {before.get(changed, 0.0):.1%} -> {after.get(changed, 0.0):.1%}"
    if before is None or after is None:
        return name
    if summary["kind"] == "rate":
        return f"{name} {before:.1%} -> {after:.1%}"
    return f"{name} mean {before:.4g} -> {after:.4g}"


def _label_text(group: dict[str, Any] | str) -> str:
    if isinstance(group, str):
        return group
    prompt = group["prompt"] or "no prompt"
    version = f" v{group['prompt_version']}" if group["prompt_version"] is not None else ""
    return f"{prompt}{version} on {group['model'] or 'no model'}"


def _span_text(span: tuple[datetime, datetime]) -> str:
    return f"{span[0].isoformat()} to {span[1].isoformat()}"


# --- reading the settings ------------------------------------------------------------------------


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_window(str(value))
    except InvalidInputError:
        raise ConfigError(
            f"outputs.reference_window: {value!r} is not a duration; write e.g. 7d, 24h or 2w"
        ) from None


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"outputs.reference_start: {value!r} is not a date or time; write e.g. "
                "2026-11-01 or 2026-11-01T12:00:00Z"
            ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _texts(config: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = config.get(key) or []
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ConfigError(f"outputs.{key}: expected a list of strings, got {values!r}")
    bad = [value for value in values if not isinstance(value, str) or not value.strip()]
    if bad:
        raise ConfigError(f"outputs.{key}: {bad[0]!r} is not a non-empty string")
    return tuple(values)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"outputs.json_expected: expected true or false, got {value!r}")
    return value
