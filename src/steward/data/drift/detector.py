"""Exact mode: ``compare`` and the ``DriftDetector`` it runs, on the raw rows of two windows.

:class:`DriftDetector` learns a reference once (sorted, binned and counted per column, with
``steward.data.drift.stats``), then compares current windows with it column by column, in parallel
threads, and adds the domain classifier when asked; :func:`compare` fits one and compares once
(``DriftDetector.fit_compare``: each column's reference is sorted, compared and let go in turn, so
memory grows with one column per thread, not with the frame). Each numeric column is sorted once
a side and the two sorted samples merged once; KS, Wasserstein and the binned statistics all read
that merge, the sorted samples and their bin counts. Both return a ``DriftReport``
(``steward.data.drift.report``).

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
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pyarrow as pa
from scipy import stats
from threadpoolctl import threadpool_limits

from steward._util.threads import map_on_threads
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
from steward.data.drift.wasserstein import GridNulls
from steward.errors import NotFittedError

__all__ = ["DriftDetector", "compare"]

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class _ColumnReference:
    sample: NumericReference | CategoricalReference  # sorted and binned, or counted, once
    n_missing: int


def _map_columns(function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    # numpy sorts, merges and draws release the GIL, so columns run in parallel on threads. BLAS
    # keeps to one thread meanwhile: its own threads, started from every column's thread at once,
    # spin against each other (a dot product of 2M values took 40 ms instead of 1).
    threads = min(os.cpu_count() or 1, 8)
    if threads <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with threadpool_limits(limits=1, user_api="blas"):
        return map_on_threads(function, items, threads=threads)


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
        table, domain = self._read_reference(reference)
        names = list(self.methods_)
        learned = _map_columns(lambda name: self._learn(table.column(name), name), names)
        self.references_: dict[str, _ColumnReference] = dict(zip(names, learned, strict=True))
        constant = [
            name
            for name, column in self.references_.items()
            if isinstance(column.sample, NumericReference) and column.sample.constant
        ]
        self._settle(table, constant, domain)
        return self

    def compare(self, current: object) -> DriftReport:
        """Compare current data with the fitted reference; see :func:`compare`."""
        if not hasattr(self, "references_"):
            raise NotFittedError(
                "this DriftDetector is not fitted yet; call fit(reference) before compare(current)"
            )
        table = self._read_current(current)
        seed = resolve_seed(self.random_state)
        nulls = GridNulls(seed)
        per_column = _map_columns(
            lambda name: self._compare_column(
                name, self.references_[name], table.column(name), seed, nulls
            ),
            list(self.references_),
        )
        return self._report(per_column, table, seed)

    def fit_compare(self, reference: object, current: object) -> DriftReport:
        """``fit(reference).compare(current)``, the same report, in less memory: each column's
        reference is sorted when its comparison runs and let go after it, so the detector keeps
        no reference sample (``references_`` stays unset; call ``fit`` to compare again).

        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> reference = pd.DataFrame({"amount": rng.normal(size=1_000)})
        >>> current = pd.DataFrame({"amount": rng.normal(1.0, size=1_000)})
        >>> DriftDetector().fit_compare(reference, current).alarmed_columns
        ['amount']
        """
        table, domain = self._read_reference(reference)
        names = list(self.methods_)
        # A first cheap pass checks every reference column and finds the constant ones, which
        # set the methods and so the number of tests and of resamples.
        scouts = _map_columns(lambda name: self._scout(table, name), names)
        scouted = dict(zip(names, scouts, strict=True))
        constant = [name for name, (_, is_constant) in scouted.items() if is_constant]
        self._settle(table, constant, domain)
        current_table = self._read_current(current)
        seed = resolve_seed(self.random_state)
        nulls = GridNulls(seed)

        def compare_column(name: str) -> tuple[list[Outcome], ColumnSummary]:
            reference = scouted[name][0] or self._learn(table.column(name), name)
            column = current_table.column(name)
            return self._compare_column(name, reference, column, seed, nulls)

        return self._report(_map_columns(compare_column, names), current_table, seed)

    def _read_reference(self, reference: object) -> tuple[pa.Table, bool]:
        check_settings(self.alpha, self.correction, self.bins)
        wanted = None if self.columns is None else [*self.columns, *(self.categorical or ())]
        table = read_frame(reference, "reference", wanted)
        kinds, skipped = resolve_kinds(table, self.columns, self.categorical)
        methods, domain = resolve_methods(kinds, self.methods)
        self.kinds_ = kinds
        self.methods_ = methods
        self.skipped_columns_ = skipped
        return table, domain

    def _settle(self, table: pa.Table, constant: Sequence[str], domain: bool) -> None:
        """The settings that hang on the learned reference: methods, floors, resamples, rows."""
        self.methods_ = with_constant_columns(self.methods_, constant)
        self.floors_ = resolve_floors(self.floors, self.methods_, domain)
        self.n_resamples_ = resample_count(self.n_resamples, len(self.floors_), self.alpha)
        self.reference_rows_: pa.Table | None = None
        if domain:
            rng = keyed_rng(resolve_seed(self.random_state), "reference rows")
            self.reference_rows_ = sample_rows(table, self.max_classifier_rows, rng)

    def _read_current(self, current: object) -> pa.Table:
        table = read_frame(current, "current", list(self.kinds_))
        check_current_columns(table, self.kinds_)
        return table

    def _report(
        self,
        per_column: Sequence[tuple[list[Outcome], ColumnSummary]],
        table: pa.Table,
        seed: int,
    ) -> DriftReport:
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

    def _scout(self, table: pa.Table, name: str) -> tuple[_ColumnReference | None, bool]:
        """A categorical column learned (its counts are small); a numeric one checked only, and
        whether it is constant."""
        if self.kinds_[name] != "numeric":
            return self._learn(table.column(name), name), False
        values, _ = numeric_values(table.column(name), name, "reference")
        return None, bool(values.min() == values.max())

    def _learn(self, column: pa.ChunkedArray, name: str) -> _ColumnReference:
        if self.kinds_[name] == "numeric":
            values, n_missing = numeric_values(column, name, "reference")
            sample = NumericReference.from_values(values, self.bins, check=False)
            return _ColumnReference(sample, n_missing)
        counts, n_missing = category_counts(column, name, "reference")
        return _ColumnReference(CategoricalReference.from_counts(counts), n_missing)

    def _compare_column(
        self,
        name: str,
        reference: _ColumnReference,
        column: pa.ChunkedArray,
        seed: int,
        nulls: GridNulls,
    ) -> tuple[list[Outcome], ColumnSummary]:
        methods = self.methods_[name]
        sample, rng = reference.sample, keyed_rng(seed, name)
        if isinstance(sample, NumericReference):
            values, n_missing = numeric_values(column, name, "current")
            current = np.sort(values)
            found = sample.compare(
                current, methods, n_resamples=self.n_resamples_, rng=rng, check=False, nulls=nulls
            )
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
    return detector.fit_compare(reference, current)
