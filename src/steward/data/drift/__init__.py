"""Drift: did the distribution of a column move between a reference and a current window?

``compare`` (or a fitted ``DriftDetector``) works in *exact mode* on raw rows and returns a
``DriftReport``, with text and HTML renderings. The statistics themselves live in
``steward.data.drift.stats`` (profile mode, over mergeable binned profiles, calls the same functions on bin
counts), the multivariate test in ``steward.data.drift.classifier`` and the SVG charts in
``steward._util.svg``; the names of those this module has always offered are re-exported here.

A (column, method) pair alarms only when both hold:

1. the change is statistically significant for the sample sizes, after a correction for testing many
   pairs at once (Benjamini–Hochberg by default). KS and chi-square use their theoretical null; PSI,
   Jensen–Shannon, Hellinger and Wasserstein, whose null depends on the sample sizes, use a null
   resampled from the reference alone (multinomial draws from its bin frequencies); and
2. the effect is larger than a practical floor (``DEFAULT_FLOORS``, settable per column and method).

Example::

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"amount": rng.normal(size=2_000)})
    >>> current = pd.DataFrame({"amount": rng.normal(1.0, size=2_000)})
    >>> compare(reference, current).alarmed
    True
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

import jinja2
import markupsafe
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from steward._util.svg import bar_chart_svg, histogram_svg
from steward.data.drift.classifier import (
    ALL_COLUMNS,
    DomainClassifierResult,
    _category_counts,
    _check_current_columns,
    _numeric_values,
    _resolve_kinds,
    _run_domain_classifier,
    _sample_rows,
    _to_table,
    domain_classifier_test,
)
from steward.data.drift.stats import (
    CATEGORICAL_METHODS,
    CORRECTIONS,
    NUMERIC_METHODS,
    PSI_EPSILON,
    WASSERSTEIN_GRID_BINS,
    CategoricalReference,
    ChiSquareResult,
    KSResult,
    NumericReference,
    adjust_p_values,
    bin_counts,
    chi_square_from_counts,
    hellinger_from_counts,
    jensen_shannon_from_counts,
    keyed_rng,
    ks_from_sorted,
    psi_from_counts,
    resolve_seed,
    wasserstein_from_counts,
)
from steward.errors import InvalidInputError, NotFittedError

__all__ = [
    "ALL_COLUMNS",
    "CATEGORICAL_METHODS",
    "DEFAULT_FLOORS",
    "NUMERIC_METHODS",
    "PSI_EPSILON",
    "WASSERSTEIN_GRID_BINS",
    "ChiSquareResult",
    "ColumnPlot",
    "ColumnSummary",
    "DomainClassifierResult",
    "DriftDetector",
    "DriftReport",
    "DriftResult",
    "KSResult",
    "adjust_p_values",
    "chi_square_from_counts",
    "compare",
    "domain_classifier_test",
    "hellinger_from_counts",
    "jensen_shannon_from_counts",
    "ks_from_sorted",
    "psi_from_counts",
    "wasserstein_from_counts",
]

FloatArray = npt.NDArray[np.float64]
_T = TypeVar("_T")
_R = TypeVar("_R")

KS = "ks"
PSI = "psi"
JENSEN_SHANNON = "jensen_shannon"
WASSERSTEIN = "wasserstein"
HELLINGER = "hellinger"
CHI_SQUARE = "chi_square"
DOMAIN_CLASSIFIER = "domain_classifier"

_ALL_METHODS: tuple[str, ...] = (*NUMERIC_METHODS, CHI_SQUARE, DOMAIN_CLASSIFIER)

#: The practical floor per method: a significant change alarms only when its statistic exceeds it.
#: For a normal column, each numeric floor matches a mean shift of about: KS 0.25 std, PSI 0.32 std,
#: Jensen–Shannon 0.24 std, Wasserstein 0.1 std (it is in reference standard deviations),
#: Hellinger 0.29 std. Chi-square's statistic in a report is Cramér's V, whose 0.1 is Cohen's "small".
DEFAULT_FLOORS: Mapping[str, float] = MappingProxyType(
    {
        KS: 0.1,
        PSI: 0.1,
        JENSEN_SHANNON: 0.1,
        WASSERSTEIN: 0.1,
        HELLINGER: 0.1,
        CHI_SQUARE: 0.1,
        DOMAIN_CLASSIFIER: 0.55,
    }
)

_MIN_RESAMPLES = 1_000
_PLOT_BINS = 30
_PLOT_CATEGORIES = 15
_UNSEEN_REPORTED = 50


# --- what fit learns of a column, and what compare finds in it ----------------------------------


@dataclass(frozen=True)
class _ColumnReference:
    sample: NumericReference | CategoricalReference  # sorted and binned, or counted, once
    n_missing: int


class _Outcome(NamedTuple):
    column: str
    method: str
    statistic: float
    p_value: float


def _unseen_categories(
    reference: CategoricalReference, current_counts: Mapping[Any, int]
) -> tuple[dict[str, int], int]:
    known = set(reference.categories)
    unseen = sorted(
        (
            (str(category), count)
            for category, count in current_counts.items()
            if category not in known
        ),
        key=lambda item: (-item[1], item[0]),
    )
    return dict(unseen[:_UNSEEN_REPORTED]), sum(count for _, count in unseen)


# --- the report ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftResult:
    """One (column, method) test. ``alarm`` = ``significant`` and ``statistic > threshold``."""

    column: str
    method: str
    statistic: float
    p_value: float
    adjusted_p_value: float
    threshold: float
    significant: bool
    alarm: bool


@dataclass(frozen=True)
class ColumnPlot:
    """Bar heights for a report plot: shares of each side per bar (bins, or categories)."""

    labels: tuple[str, ...]
    reference_shares: tuple[float, ...]
    current_shares: tuple[float, ...]
    edges: tuple[float, ...] = ()  # numeric only: the len(labels) + 1 bar boundaries


@dataclass(frozen=True)
class ColumnSummary:
    """What was compared in one column: sizes, missing values, categories new in the current."""

    column: str
    kind: str
    n_reference: int
    n_current: int
    n_missing_reference: int
    n_missing_current: int
    plot: ColumnPlot = field(repr=False)
    unseen_categories: Mapping[str, int] = field(default_factory=dict)  # the most frequent ones
    n_unseen: int = 0  # current rows whose category the reference never saw


@dataclass(frozen=True)
class DriftReport:
    """The results of a drift comparison, one row per (column, method).

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"amount": rng.normal(size=1_000)})
    >>> report = compare(frame, frame.assign(amount=frame.amount + 1.0))
    >>> report.alarmed, report.alarmed_columns
    (True, ['amount'])
    """

    results: tuple[DriftResult, ...]
    columns: Mapping[str, ColumnSummary] = field(repr=False)
    alpha: float
    correction: str
    n_resamples: int
    skipped_columns: Mapping[str, str] = field(default_factory=dict)

    @property
    def alarmed(self) -> bool:
        """Whether any (column, method) pair alarms."""
        return any(result.alarm for result in self.results)

    @property
    def alarmed_columns(self) -> list[str]:
        """The columns with at least one alarm, in report order."""
        return list(dict.fromkeys(result.column for result in self.results if result.alarm))

    def to_frame(self) -> pd.DataFrame:
        """One row per (column, method), as a pandas DataFrame.

        >>> list(compare(*_example_frames()).to_frame().columns)[:3]
        ['column', 'method', 'statistic']
        """
        names = list(DriftResult.__dataclass_fields__)
        return pd.DataFrame(
            [[getattr(row, name) for name in names] for row in self.results], columns=names
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: ``{"alarm": bool, "results": [...], ...}``; infinities become None.

        >>> import json
        >>> json.loads(json.dumps(compare(*_example_frames()).to_dict()))["alarm"]
        True
        """
        return {
            "alarm": self.alarmed,
            "alpha": self.alpha,
            "correction": self.correction,
            "n_resamples": self.n_resamples,
            "results": [
                {name: _json_safe(getattr(row, name)) for name in DriftResult.__dataclass_fields__}
                for row in self.results
            ],
            "columns": {name: _summary_dict(summary) for name, summary in self.columns.items()},
            "skipped_columns": dict(self.skipped_columns),
        }

    def to_text(self) -> str:
        """A plain-text table for logs and CI output.

        >>> print(compare(*_example_frames()).to_text().splitlines()[0])
        drift: ALARM on 1 of 1 columns (amount); alpha=0.05, correction=bh, resamples=1000
        """
        return _render_text(self)

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """A self-contained HTML page (inline SVG plots, no scripts, no network); written to ``path``
        when given, and returned.

        >>> compare(*_example_frames()).to_html().startswith("<!doctype html>")
        True
        """
        page = _render_html(self)
        if path is not None:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(page)
        return page


def _example_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and a clearly shifted current frame, for the docstring examples."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({"amount": rng.normal(size=1_000)}), pd.DataFrame(
        {"amount": rng.normal(1.0, size=1_000)}
    )


def _json_safe(value: object) -> object:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _summary_dict(summary: ColumnSummary) -> dict[str, Any]:
    return {
        "kind": summary.kind,
        "n_reference": summary.n_reference,
        "n_current": summary.n_current,
        "n_missing_reference": summary.n_missing_reference,
        "n_missing_current": summary.n_missing_current,
        "unseen_categories": {key: int(count) for key, count in summary.unseen_categories.items()},
        "n_unseen": int(summary.n_unseen),
    }


def _build_report(
    outcomes: Sequence[_Outcome],
    summaries: Mapping[str, ColumnSummary],
    floors: Mapping[tuple[str, str], float],
    settings: tuple[float, str, int],
    skipped: Mapping[str, str],
) -> DriftReport:
    alpha, correction, n_resamples = settings
    adjusted = adjust_p_values([outcome.p_value for outcome in outcomes], correction)
    results = []
    for outcome, adjusted_p_value in zip(outcomes, adjusted, strict=True):
        threshold = floors[(outcome.column, outcome.method)]
        significant = bool(adjusted_p_value <= alpha)
        results.append(
            DriftResult(
                column=outcome.column,
                method=outcome.method,
                statistic=outcome.statistic,
                p_value=outcome.p_value,
                adjusted_p_value=float(adjusted_p_value),
                threshold=threshold,
                significant=significant,
                alarm=significant and outcome.statistic > threshold,
            )
        )
    return DriftReport(
        results=tuple(results),
        columns=dict(summaries),
        alpha=alpha,
        correction=correction,
        n_resamples=n_resamples,
        skipped_columns=dict(skipped),
    )


# --- settings --------------------------------------------------------------------------------------


def _check_settings(alpha: float, correction: str, bins: int) -> None:
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must be within (0, 1), got {alpha!r}; the usual is 0.05")
    if correction not in CORRECTIONS:
        raise InvalidInputError(
            f"correction={correction!r} is unknown; choose one of {CORRECTIONS}"
        )
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise InvalidInputError(f"bins must be an int >= 2, got {bins!r}; the usual is 10")


def _resolve_methods(
    kinds: Mapping[str, str], methods: Sequence[str] | None
) -> tuple[dict[str, tuple[str, ...]], bool]:
    """The methods of each column, in canonical order, and whether to run the domain classifier."""
    if methods is None:
        wanted: set[str] = set(NUMERIC_METHODS) | set(CATEGORICAL_METHODS)
    else:
        wanted = {methods} if isinstance(methods, str) else set(methods)
        unknown = sorted(wanted - set(_ALL_METHODS))
        if unknown:
            raise InvalidInputError(
                f"unknown method(s) {unknown}; choose from {list(_ALL_METHODS)}"
            )
    per_column = {}
    for name, kind in kinds.items():
        applicable = NUMERIC_METHODS if kind == "numeric" else CATEGORICAL_METHODS
        chosen = tuple(method for method in applicable if method in wanted)
        if chosen:
            per_column[name] = chosen
    domain = DOMAIN_CLASSIFIER in wanted and methods is not None
    if not per_column and not domain:
        raise InvalidInputError(
            f"methods={methods} apply to none of the columns {dict(kinds)}; numeric columns take "
            f"{list(NUMERIC_METHODS)}, categorical ones {list(CATEGORICAL_METHODS)}"
        )
    return per_column, domain


def _floor_value(value: object, where: str) -> float:
    try:
        floor = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        floor = math.nan
    if not (math.isfinite(floor) and floor >= 0):
        raise InvalidInputError(
            f"the floor for {where} must be a finite number >= 0, got {value!r}"
        )
    return floor


def _resolve_floors(
    floors: Mapping[str, float | Mapping[str, float]] | None,
    methods: Mapping[str, Sequence[str]],
    domain: bool,
) -> dict[tuple[str, str], float]:
    """The floor of every (column, method): the user's per-column value, else per-method, else default.

    ``floors={"psi": 0.2, "income": {"ks": 0.05}}`` sets PSI's floor for every column and KS's for
    ``income`` only.
    """
    resolved = {
        (name, method): DEFAULT_FLOORS[method] for name in methods for method in methods[name]
    }
    if domain:
        resolved[(ALL_COLUMNS, DOMAIN_CLASSIFIER)] = DEFAULT_FLOORS[DOMAIN_CLASSIFIER]
    items = dict(floors or {})
    for method, value in items.items():
        if isinstance(value, Mapping):
            continue
        if method not in _ALL_METHODS:
            raise InvalidInputError(
                f"floors names {method!r}, which is neither a method {list(_ALL_METHODS)} nor "
                "(with a dict value) a compared column"
            )
        for key in resolved:
            if key[1] == method:
                resolved[key] = _floor_value(value, f"method {method!r}")
    for column, by_method in items.items():
        if not isinstance(by_method, Mapping):
            continue
        for method, value in by_method.items():
            if (column, method) not in resolved:
                raise InvalidInputError(
                    f"floors sets ({column!r}, {method!r}), but that column is not compared with "
                    f"that method; compared: {sorted(resolved)}"
                )
            resolved[(column, method)] = _floor_value(value, f"({column!r}, {method!r})")
    return resolved


def _resample_count(n_resamples: int | None, n_tests: int, alpha: float) -> int:
    if n_resamples is None:
        # Enough draws that one test alone can clear a Bonferroni bar (and BH's lowest): the
        # smallest resampled p-value, 1 / (B + 1), is then below alpha / m.
        return max(_MIN_RESAMPLES, math.ceil(n_tests / alpha))
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise InvalidInputError(
            f"n_resamples must be an int >= 1, got {n_resamples!r}; leave it None for the default"
        )
    return n_resamples


def _map_columns(function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    # numpy sorts, merges and draws release the GIL, so columns run in parallel on threads.
    workers = min(len(items), os.cpu_count() or 1, 8)
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


# --- the fitted detector and the entry point -------------------------------------------------------


class DriftDetector:
    """Learns a reference once (sorts, bins, category counts), then compares current windows to it.

    Parameters are those of :func:`compare`. Learned state: ``kinds_`` (column to "numeric" or
    "categorical"), ``methods_``, ``floors_``, ``n_resamples_``, ``skipped_columns_``.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> detector = DriftDetector().fit(pd.DataFrame({"amount": rng.normal(size=1_000)}))
    >>> detector.compare(pd.DataFrame({"amount": rng.normal(size=1_000)})).alarmed
    False
    """

    def __init__(
        self,
        *,
        columns: Sequence[str] | None = None,
        methods: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        floors: Mapping[str, float | Mapping[str, float]] | None = None,
        alpha: float = 0.05,
        correction: str = "bh",
        bins: int = 10,
        n_resamples: int | None = None,
        max_classifier_rows: int = 10_000,
        random_state: int | None = 0,
    ) -> None:
        self.columns = columns
        self.methods = methods
        self.categorical = categorical
        self.floors = floors
        self.alpha = alpha
        self.correction = correction
        self.bins = bins
        self.n_resamples = n_resamples
        self.max_classifier_rows = max_classifier_rows
        self.random_state = random_state

    def fit(self, reference: object) -> DriftDetector:
        """Learn the reference data (a pandas DataFrame, pyarrow Table or polars DataFrame)."""
        _check_settings(self.alpha, self.correction, self.bins)
        table = _to_table(reference, "reference")
        kinds, skipped = _resolve_kinds(table, self.columns, self.categorical)
        methods, domain = _resolve_methods(kinds, self.methods)
        self.kinds_ = kinds
        self.methods_ = methods
        self.skipped_columns_ = skipped
        self.floors_ = _resolve_floors(self.floors, methods, domain)
        self.n_resamples_ = _resample_count(self.n_resamples, len(self.floors_), self.alpha)
        names = list(methods)
        profiles = _map_columns(lambda name: self._learn(table.column(name), name), names)
        self.references_: dict[str, _ColumnReference] = dict(zip(names, profiles, strict=True))
        self.reference_rows_: pa.Table | None = None
        if domain:
            rng = keyed_rng(resolve_seed(self.random_state), "reference rows")
            self.reference_rows_ = _sample_rows(table, self.max_classifier_rows, rng)
        return self

    def compare(self, current: object) -> DriftReport:
        """Compare current data with the fitted reference; see :func:`compare`."""
        if not hasattr(self, "references_"):
            raise NotFittedError(
                "this DriftDetector is not fitted yet; call fit(reference) before compare(current)"
            )
        table = _to_table(current, "current")
        _check_current_columns(table, self.kinds_)
        seed = resolve_seed(self.random_state)
        per_column = _map_columns(
            lambda name: self._compare_column(name, table.column(name), seed),
            list(self.references_),
        )
        outcomes = [outcome for column_outcomes, _ in per_column for outcome in column_outcomes]
        if self.reference_rows_ is not None:
            outcomes.append(self._domain_outcome(table, seed))
        return _build_report(
            outcomes,
            {summary.column: summary for _, summary in per_column},
            self.floors_,
            (self.alpha, self.correction, self.n_resamples_),
            self.skipped_columns_,
        )

    def _learn(self, column: pa.ChunkedArray, name: str) -> _ColumnReference:
        if self.kinds_[name] == "numeric":
            values, n_missing = _numeric_values(column, name, "reference")
            return _ColumnReference(NumericReference.from_values(values, self.bins), n_missing)
        counts, n_missing = _category_counts(column, name, "reference")
        return _ColumnReference(CategoricalReference.from_counts(counts), n_missing)

    def _compare_column(
        self, name: str, column: pa.ChunkedArray, seed: int
    ) -> tuple[list[_Outcome], ColumnSummary]:
        reference, methods = self.references_[name], self.methods_[name]
        sample, rng = reference.sample, keyed_rng(seed, name)
        if isinstance(sample, NumericReference):
            values, n_missing = _numeric_values(column, name, "current")
            current = np.sort(values)
            found = sample.compare(current, methods, n_resamples=self.n_resamples_, rng=rng)
            summary = ColumnSummary(
                column=name,
                kind="numeric",
                n_reference=sample.values.size,
                n_current=current.size,
                n_missing_reference=reference.n_missing,
                n_missing_current=n_missing,
                plot=_numeric_plot(sample.values, current),
            )
        else:
            counts, n_missing = _category_counts(column, name, "current")
            found = sample.compare(counts, methods, n_resamples=self.n_resamples_, rng=rng)
            summary = _categorical_summary(name, sample, reference.n_missing, counts, n_missing)
        outcomes = [
            _Outcome(name, method, found[method].statistic, found[method].p_value)
            for method in methods
        ]
        return outcomes, summary

    def _domain_outcome(self, table: pa.Table, seed: int) -> _Outcome:
        assert self.reference_rows_ is not None  # fit stores the rows whenever this is called
        rng = keyed_rng(seed, ALL_COLUMNS)
        result = _run_domain_classifier(
            self.reference_rows_,
            _sample_rows(table, self.max_classifier_rows, rng),
            self.kinds_,
            "hist_gradient_boosting",
            5,
            rng,
        )
        return _Outcome(ALL_COLUMNS, DOMAIN_CLASSIFIER, result.auc, result.p_value)


def compare(
    reference: object,
    current: object,
    *,
    columns: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    floors: Mapping[str, float | Mapping[str, float]] | None = None,
    alpha: float = 0.05,
    correction: str = "bh",
    random_state: int | None = 0,
    bins: int = 10,
    n_resamples: int | None = None,
) -> DriftReport:
    """Compare each column of ``current`` with ``reference``; alarm where a change is both
    significant and larger than its practical floor.

    ``reference`` and ``current`` are pandas DataFrames, pyarrow Tables or polars DataFrames.
    ``columns`` defaults to every numeric, boolean or string column of the reference; numbers are
    compared as numbers unless named in ``categorical``. ``methods`` picks among
    ``NUMERIC_METHODS``, ``CATEGORICAL_METHODS`` and ``"domain_classifier"`` (off by default).
    ``floors`` overrides ``DEFAULT_FLOORS`` per method (``{"psi": 0.2}``) or per column and method
    (``{"income": {"ks": 0.05}}``). ``correction`` is ``"bh"`` (false discovery rate),
    ``"bonferroni"`` or ``"none"``. ``n_resamples`` (default: at least 1000, more for many tests)
    sets the resampled nulls; ``bins`` the reference-quantile bins of PSI, Jensen–Shannon and
    Hellinger.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"amount": rng.normal(size=2_000), "plan": rng.choice(["a", "b"], 2_000)})
    >>> current = pd.DataFrame({"amount": rng.normal(size=2_000), "plan": rng.choice(["a", "b", "c"], 2_000)})
    >>> compare(reference, current).alarmed_columns
    ['plan']
    """
    detector = DriftDetector(
        columns=columns,
        methods=methods,
        categorical=categorical,
        floors=floors,
        alpha=alpha,
        correction=correction,
        bins=bins,
        n_resamples=n_resamples,
        random_state=random_state,
    )
    return detector.fit(reference).compare(current)


# --- plots and rendering ---------------------------------------------------------------------------


def _numeric_plot(reference: FloatArray, current: FloatArray) -> ColumnPlot:
    """Equal-width bars over the central 99% of both samples; the tails pile into the end bars."""

    def at(values: FloatArray, share: float) -> float:
        return float(values[int(share * (values.size - 1))])

    low = min(at(reference, 0.005), at(current, 0.005))
    high = max(at(reference, 0.995), at(current, 0.995))
    if not high > low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, _PLOT_BINS + 1)
    reference_shares = bin_counts(reference, edges[1:-1]) / reference.size
    current_shares = bin_counts(current, edges[1:-1]) / current.size
    return ColumnPlot(
        labels=tuple(f"{left:.4g}" for left in edges[:-1]),
        reference_shares=tuple(reference_shares.tolist()),
        current_shares=tuple(current_shares.tolist()),
        edges=tuple(edges.tolist()),
    )


def _categorical_summary(
    name: str,
    reference: CategoricalReference,
    n_missing_reference: int,
    counts: Mapping[Any, int],
    n_missing: int,
) -> ColumnSummary:
    unseen, n_unseen = _unseen_categories(reference, counts)
    n_reference = float(reference.counts.sum())
    n_current = float(sum(counts.values()))
    reference_share = dict(zip(reference.categories, reference.counts / n_reference, strict=True))
    current_share = {category: count / n_current for category, count in counts.items()}
    pooled = sorted(
        set(reference_share) | set(current_share),
        key=lambda category: (
            -(reference_share.get(category, 0.0) + current_share.get(category, 0.0))
        ),
    )
    shown = pooled[:_PLOT_CATEGORIES]
    labels = [str(category) for category in shown]
    reference_bars = [reference_share.get(category, 0.0) for category in shown]
    current_bars = [current_share.get(category, 0.0) for category in shown]
    if len(pooled) > len(shown):
        labels.append("(other)")
        reference_bars.append(1.0 - sum(reference_bars))
        current_bars.append(1.0 - sum(current_bars))
    return ColumnSummary(
        column=name,
        kind="categorical",
        n_reference=int(n_reference),
        n_current=int(n_current),
        n_missing_reference=n_missing_reference,
        n_missing_current=n_missing,
        plot=ColumnPlot(tuple(labels), tuple(reference_bars), tuple(current_bars)),
        unseen_categories=unseen,
        n_unseen=n_unseen,
    )


def _format_number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _verdict(report: DriftReport) -> str:
    n_columns = len(report.columns)
    settings = (
        f"alpha={report.alpha}, correction={report.correction}, resamples={report.n_resamples}"
    )
    if report.alarmed:
        alarmed = report.alarmed_columns
        return f"drift: ALARM on {len(alarmed)} of {n_columns} columns ({', '.join(alarmed)}); {settings}"
    return f"drift: no alarm across {n_columns} columns; {settings}"


def _result_cells(result: DriftResult) -> tuple[str, ...]:
    verdict = "ALARM" if result.alarm else ("significant" if result.significant else "")
    return (
        result.column,
        result.method,
        _format_number(result.statistic),
        _format_number(result.threshold),
        _format_number(result.p_value),
        _format_number(result.adjusted_p_value),
        verdict,
    )


_HEADER = ("column", "method", "statistic", "floor", "p_value", "adjusted_p", "verdict")


def _render_text(report: DriftReport) -> str:
    rows = [_HEADER, *(_result_cells(result) for result in report.results)]
    widths = [max(len(row[index]) for row in rows) for index in range(len(_HEADER))]
    lines = [_verdict(report), ""]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    for summary in report.columns.values():
        if summary.n_unseen:
            shown = ", ".join(
                f"{key!r}: {count}" for key, count in summary.unseen_categories.items()
            )
            lines.append(
                f"{summary.column}: {summary.n_unseen} current rows in categories the "
                f"reference never saw ({shown})"
            )
    for name, reason in report.skipped_columns.items():
        lines.append(f"{name}: not compared ({reason})")
    return "\n".join(lines) + "\n"


def _plot_svg(summary: ColumnSummary) -> markupsafe.Markup:
    """Reference and current bar heights per bin or category, as an inline SVG element."""
    plot = summary.plot
    series = {"reference": plot.reference_shares, "current": plot.current_shares}
    title = f"{summary.column}: reference vs current"
    attributes = {"class": "plot", "data-column": summary.column}
    if plot.edges:  # numeric bins overlap; categories stand side by side
        svg = histogram_svg(plot.edges, series, title=title, attributes=attributes)
    else:
        svg = bar_chart_svg(plot.labels, series, title=title, attributes=attributes)
    return markupsafe.Markup(svg)


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("steward", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _render_html(report: DriftReport) -> str:
    columns = [
        {
            "summary": summary,
            "svg": _plot_svg(summary),
            "unseen": ", ".join(
                f"{key} ({count})" for key, count in summary.unseen_categories.items()
            ),
        }
        for summary in report.columns.values()
    ]
    return _TEMPLATES.get_template("drift_report.html.j2").render(
        alarmed=report.alarmed,
        verdict=_verdict(report),
        header=_HEADER,
        rows=[{"alarm": result.alarm, "cells": _result_cells(result)} for result in report.results],
        columns=columns,
        skipped=list(report.skipped_columns.items()),
    )
