"""Drift: did the distribution of a column move between a reference and a current window?

``compare`` (or a fitted ``DriftDetector``, both in ``steward.data.drift.detector``) works in
*exact mode* on raw rows and returns a ``DriftReport`` (``steward.data.drift.report``), with text
and HTML renderings. The statistics themselves live in ``steward.data.drift.stats`` (profile mode,
over mergeable binned profiles, calls the same functions on bin counts), the multivariate test in
``steward.data.drift.classifier``, the settings and their defaults in
``steward.data.drift.options``, the reading of input frames in ``steward.data.drift.inputs`` and
the SVG charts in ``steward._util.svg``; the names this package has always offered are
re-exported here.

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

from steward.data.drift.classifier import (
    ALL_COLUMNS,
    DomainClassifierResult,
    domain_classifier_test,
)
from steward.data.drift.detector import DriftDetector, compare
from steward.data.drift.ks import KSResult, ks_from_sorted
from steward.data.drift.options import (
    CHI_SQUARE,
    DEFAULT_FLOORS,
    DOMAIN_CLASSIFIER,
    HELLINGER,
    JENSEN_SHANNON,
    KS,
    PSI,
    WASSERSTEIN,
)
from steward.data.drift.report import ColumnPlot, ColumnSummary, DriftReport, DriftResult
from steward.data.drift.stats import (
    CATEGORICAL_METHODS,
    NUMERIC_METHODS,
    PSI_EPSILON,
    WASSERSTEIN_GRID_BINS,
    ChiSquareResult,
    adjust_p_values,
    chi_square_from_counts,
    hellinger_from_counts,
    jensen_shannon_from_counts,
    psi_from_counts,
    wasserstein_from_counts,
)

__all__ = [
    "ALL_COLUMNS",
    "CATEGORICAL_METHODS",
    "CHI_SQUARE",
    "DEFAULT_FLOORS",
    "DOMAIN_CLASSIFIER",
    "HELLINGER",
    "JENSEN_SHANNON",
    "KS",
    "NUMERIC_METHODS",
    "PSI",
    "PSI_EPSILON",
    "WASSERSTEIN",
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
