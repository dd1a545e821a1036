"""Exact mode: ``compare`` and the ``DriftDetector`` it runs, on the raw rows of two windows.

:class:`DriftDetector` learns a reference once (sorted, binned and counted per column, with
``steward.data.drift.stats``), then compares current windows with it column by column, in parallel
threads, and adds the domain classifier when asked; :func:`compare` fits one and compares once.
Both return a ``DriftReport`` (``steward.data.drift.report``).

Example::

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"amount": rng.normal(size=2_000)})
    >>> compare(reference, pd.DataFrame({"amount": rng.normal(1.0, size=2_000)})).alarmed
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pyarrow as pa
from scipy import stats

from steward.data.drift.classifier import ALL_COLUMNS, run_domain_classifier
from steward.data.drift.inputs import (
    category_counts,
    check_current_columns,
    numeric_values,
    read_frame,
    resolve_kinds,
    sample_rows,
)
from steward.data.drift.options import (
    DOMAIN_CLASSIFIER,
    check_settings,
    resample_count,
    resolve_floors,
    resolve_methods,
    with_constant_columns,
)
from steward.data.drift.report import (
    ColumnSummary,
    DriftReport,
    Outcome,
    build_report,
    categorical_summary,
    constant_note,
    numeric_plot,
)
from steward.data.drift.stats import (
    NOISE_QUANTILE,
    CategoricalReference,
    NumericReference,
    keyed_rng,
    resolve_seed,
)
from steward.errors import NotFittedError

__all__ = ["DriftDetector", "compare"]

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class _ColumnReference:
    sample: NumericReference | CategoricalReference  # sorted and binned, or counted, once
    n_missing: int


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
        check_settings(self.alpha, self.correction, self.bins)
        table = read_frame(reference, "reference")
        kinds, skipped = resolve_kinds(table, self.columns, self.categorical)
        methods, domain = resolve_methods(kinds, self.methods)
        self.kinds_ = kinds
        self.methods_ = methods
        self.skipped_columns_ = skipped
        names = list(methods)
        profiles = _map_columns(lambda name: self._learn(table.column(name), name), names)
        self.references_: dict[str, _ColumnReference] = dict(zip(names, profiles, strict=True))
        constant = [
            name
            for name, learned in self.references_.items()
            if isinstance(learned.sample, NumericReference) and learned.sample.constant
        ]
        self.methods_ = with_constant_columns(self.methods_, constant)
        self.floors_ = resolve_floors(self.floors, self.methods_, domain)
        self.n_resamples_ = resample_count(self.n_resamples, len(self.floors_), self.alpha)
        self.reference_rows_: pa.Table | None = None
        if domain:
            rng = keyed_rng(resolve_seed(self.random_state), "reference rows")
            self.reference_rows_ = sample_rows(table, self.max_classifier_rows, rng)
        return self

    def compare(self, current: object) -> DriftReport:
        """Compare current data with the fitted reference; see :func:`compare`."""
        if not hasattr(self, "references_"):
            raise NotFittedError(
                "this DriftDetector is not fitted yet; call fit(reference) before compare(current)"
            )
        table = read_frame(current, "current")
        check_current_columns(table, self.kinds_)
        seed = resolve_seed(self.random_state)
        per_column = _map_columns(
            lambda name: self._compare_column(name, table.column(name), seed),
            list(self.references_),
        )
        outcomes = [outcome for column_outcomes, _ in per_column for outcome in column_outcomes]
        if self.reference_rows_ is not None:
            outcomes.append(self._domain_outcome(table, seed))
        return build_report(
            outcomes,
            {summary.column: summary for _, summary in per_column},
            self.floors_,
            (self.alpha, self.correction, self.n_resamples_),
            self.skipped_columns_,
        )

    def _learn(self, column: pa.ChunkedArray, name: str) -> _ColumnReference:
        if self.kinds_[name] == "numeric":
            values, n_missing = numeric_values(column, name, "reference")
            return _ColumnReference(NumericReference.from_values(values, self.bins), n_missing)
        counts, n_missing = category_counts(column, name, "reference")
        return _ColumnReference(CategoricalReference.from_counts(counts), n_missing)

    def _compare_column(
        self, name: str, column: pa.ChunkedArray, seed: int
    ) -> tuple[list[Outcome], ColumnSummary]:
        reference, methods = self.references_[name], self.methods_[name]
        sample, rng = reference.sample, keyed_rng(seed, name)
        if isinstance(sample, NumericReference):
            values, n_missing = numeric_values(column, name, "current")
            current = np.sort(values)
            found = sample.compare(current, methods, n_resamples=self.n_resamples_, rng=rng)
            summary = ColumnSummary(
                column=name,
                kind="numeric",
                n_reference=sample.values.size,
                n_current=current.size,
                n_missing_reference=reference.n_missing,
                n_missing_current=n_missing,
                plot=numeric_plot(sample.values, current),
                note=_note(sample, current),
            )
        else:
            counts, n_missing = category_counts(column, name, "current")
            found = sample.compare(counts, methods, n_resamples=self.n_resamples_, rng=rng)
            summary = categorical_summary(name, sample, reference.n_missing, counts, n_missing)
        outcomes = [
            Outcome(
                name, method, found[method].statistic, found[method].p_value, found[method].noise
            )
            for method in methods
        ]
        return outcomes, summary

    def _domain_outcome(self, table: pa.Table, seed: int) -> Outcome:
        assert self.reference_rows_ is not None  # fit stores the rows whenever this is called
        rng = keyed_rng(seed, ALL_COLUMNS)
        result = run_domain_classifier(
            self.reference_rows_,
            sample_rows(table, self.max_classifier_rows, rng),
            self.kinds_,
            "hist_gradient_boosting",
            5,
            rng,
        )
        # The AUC's NOISE_QUANTILE under no drift (Mann–Whitney's normal approximation), above 0.5.
        n_reference, n_current = result.n_reference, result.n_current
        spread = np.sqrt((n_reference + n_current + 1) / (12.0 * n_reference * n_current))
        noise = float(stats.norm.ppf(NOISE_QUANTILE) * spread)
        return Outcome(ALL_COLUMNS, DOMAIN_CLASSIFIER, result.auc, result.p_value, noise)


def _note(reference: NumericReference, current: np.ndarray) -> str:
    if not reference.constant:
        return ""
    constant = float(reference.values[0])
    return constant_note(constant, int(np.count_nonzero(current != constant)), current.size)


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
