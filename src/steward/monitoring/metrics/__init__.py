"""Model performance: outcomes joined to predictions, realized quality, and quality estimated early.

Three steps, each a function or a fitted object (``docs/performance.md`` has the definitions):

1. ``join_outcomes`` attaches the logged outcomes to the logged predictions, by prediction id or by
   entity key (the first outcome at or after the prediction, within a horizon).
2. ``realized_performance`` scores the labeled predictions per model version and time window, with a
   95% interval on every metric (Wilson, logit DeLong or a vectorized bootstrap) and a ``status``
   saying "not enough data" where a group is too small for a number to mean anything.
3. ``CBPE`` estimates a binary classifier's quality before the labels arrive, from the scores alone
   (confidence-based performance estimation); ``estimate_performance`` does it per window.

Example::

    >>> import pandas as pd
    >>> predictions = pd.DataFrame({"id": ["p1", "p2"], "score": [0.9, 0.2],
    ...     "event_time": pd.to_datetime(["2024-05-01", "2024-05-02"], utc=True)})
    >>> outcomes = pd.DataFrame({"id": ["o1"], "prediction_id": ["p1"], "value": [1.0],
    ...     "event_time": pd.to_datetime(["2024-05-20"], utc=True)})
    >>> join_outcomes(predictions, outcomes)["labeled"].tolist()
    [True, False]

The package is split along those steps: ``join`` (outcomes to predictions), ``windows`` (groups
and time windows), ``realized`` (realized metrics), ``intervals`` (Wilson, DeLong, bootstrap) and
``cbpe`` (estimation); every public name is importable from ``steward.monitoring.metrics``.
"""

from __future__ import annotations

from steward.monitoring.metrics.cbpe import CBPE, ESTIMATED_METRICS, estimate_performance
from steward.monitoring.metrics.intervals import (
    BATCH_CELLS,
    STATUS_OK,
    Metric,
    auc_placements,
    bootstrap,
    check_settings,
    delong,
    delong_logit,
    missing_metric,
    wilson,
    z_score,
)
from steward.monitoring.metrics.join import JOIN_KEYS, join_outcomes, require_columns
from steward.monitoring.metrics.realized import (
    BINARY_METRICS,
    CALIBRATION_BINS,
    MIN_PER_CLASS,
    MIN_SAMPLES,
    REGRESSION_METRICS,
    average_precision_rows,
    brier_rows,
    calibration_error_rows,
    expected_calibration_error,
    f1_rows,
    mae_rows,
    mape_rows,
    r2_rows,
    realized_performance,
    rmse_rows,
)
from steward.monitoring.metrics.windows import iter_groups, with_windows

__all__ = [
    "BATCH_CELLS",
    "BINARY_METRICS",
    "CALIBRATION_BINS",
    "CBPE",
    "ESTIMATED_METRICS",
    "JOIN_KEYS",
    "MIN_PER_CLASS",
    "MIN_SAMPLES",
    "REGRESSION_METRICS",
    "STATUS_OK",
    "Metric",
    "auc_placements",
    "average_precision_rows",
    "bootstrap",
    "brier_rows",
    "calibration_error_rows",
    "check_settings",
    "delong",
    "delong_logit",
    "estimate_performance",
    "expected_calibration_error",
    "f1_rows",
    "iter_groups",
    "join_outcomes",
    "mae_rows",
    "mape_rows",
    "missing_metric",
    "r2_rows",
    "realized_performance",
    "require_columns",
    "rmse_rows",
    "wilson",
    "with_windows",
    "z_score",
]
