"""The domain-classifier test: can a classifier tell current rows from reference rows?

A multivariate drift check. Per-column tests miss a change in how columns move together; a model
trained to label rows "reference" (0) or "current" (1) catches it. Scores come out of fold, from
stratified cross-validation, so with no drift they are exchangeable between the labels: the test
is the one-sided Mann–Whitney test that current rows score higher, and the effect size is the ROC
AUC of those scores (0.5: indistinguishable). ``steward.data.drift`` runs it as the
``"domain_classifier"`` method, reported under the column ``ALL_COLUMNS``.

It reads its inputs and picks columns as ``steward.data.drift.compare`` does, with the functions
of ``steward.data.drift.inputs``.

Example::

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"x": rng.normal(size=500)})
    >>> current = pd.DataFrame({"x": rng.normal(1.0, size=500)})
    >>> domain_classifier_test(reference, current).p_value < 0.01
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from scipy import stats

from steward.data.drift.inputs import (
    check_current_columns,
    read_frame,
    resolve_kinds,
    sample_rows,
)
from steward.data.drift.stats import keyed_rng, resolve_seed
from steward.errors import InvalidInputError

__all__ = [
    "ALL_COLUMNS",
    "DomainClassifierResult",
    "domain_classifier_test",
    "run_domain_classifier",
]

FloatArray = npt.NDArray[np.float64]

#: The column name of multivariate results (the domain classifier sees all columns at once).
ALL_COLUMNS = "*"

_CATEGORY_CODES = 254  # HistGradientBoosting wants category codes below max_bins (255)


@dataclass(frozen=True)
class DomainClassifierResult:
    """How well a classifier tells current rows from reference rows, out of fold.

    ``auc`` is the ROC AUC of the out-of-fold scores (0.5: indistinguishable); ``p_value`` is the
    one-sided Mann–Whitney p-value that the current rows score higher. ``labels`` (1 = current) and
    ``scores`` are the rows actually used, after sampling.
    """

    auc: float
    p_value: float
    n_reference: int
    n_current: int
    labels: npt.NDArray[np.int64] = field(repr=False)
    scores: FloatArray = field(repr=False)


def domain_classifier_test(
    reference: object,
    current: object,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    classifier: str = "hist_gradient_boosting",
    n_folds: int = 5,
    max_rows: int = 10_000,
    random_state: int | None = 0,
) -> DomainClassifierResult:
    """Train a classifier to tell reference rows from current rows; drift if it can.

    ``reference`` and ``current`` are pandas DataFrames, pyarrow Tables or polars DataFrames; columns
    are picked as by ``steward.data.drift.compare``. Up to ``max_rows`` rows are sampled from each side;
    ``classifier`` is ``"hist_gradient_boosting"`` (handles missing values and categories natively)
    or ``"logistic_regression"``; scores come from stratified ``n_folds``-fold cross-validation.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    >>> current = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(2.0, size=500)})
    >>> domain_classifier_test(reference, current).auc > 0.8
    True
    """
    reference_table = read_frame(reference, "reference")
    current_table = read_frame(current, "current")
    kinds, _ = resolve_kinds(reference_table, columns, categorical)
    check_current_columns(current_table, kinds)
    rng = keyed_rng(resolve_seed(random_state), ALL_COLUMNS)
    return run_domain_classifier(
        sample_rows(reference_table, max_rows, rng),
        sample_rows(current_table, max_rows, rng),
        kinds,
        classifier,
        n_folds,
        rng,
    )


# --- the classifier --------------------------------------------------------------------------------


def run_domain_classifier(
    reference_rows: pa.Table,
    current_rows: pa.Table,
    kinds: Mapping[str, str],
    classifier: str,
    n_folds: int,
    rng: np.random.Generator,
) -> DomainClassifierResult:
    """The test on rows already sampled; ``kinds`` maps each column to "numeric" or "categorical"."""
    # scikit-learn loads lazily: most comparisons never train a model.
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    if min(reference_rows.num_rows, current_rows.num_rows) < max(n_folds, 2):
        raise InvalidInputError(
            f"the domain classifier needs at least n_folds={n_folds} rows per side, got "
            f"{reference_rows.num_rows} reference and {current_rows.num_rows} current rows; "
            "pass more rows or lower n_folds"
        )
    features, categorical_mask = _classifier_features([reference_rows, current_rows], kinds)
    labels = np.repeat(
        np.array([0, 1], dtype=np.int64), [reference_rows.num_rows, current_rows.num_rows]
    )
    seed = int(rng.integers(2**31 - 1))
    model = _domain_model(classifier, categorical_mask, seed)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    # One OpenMP thread: on a busy or shared machine (a CI runner) HistGradientBoosting's spinning
    # threads ran 20 times slower than one thread, and these models are small.
    with threadpool_limits(limits=1, user_api="openmp"):
        scores = cross_val_predict(model, features, labels, cv=folds, method="predict_proba")[:, 1]
    # A fold's scores come from a model that never saw the fold, so with no drift they are
    # exchangeable between the labels within each stratified fold: Mann–Whitney on them is valid
    # (slightly conservative, as it ignores the folds). Its U / (n0 · n1) is the AUC.
    test = stats.mannwhitneyu(scores[labels == 1], scores[labels == 0], alternative="greater")
    return DomainClassifierResult(
        auc=float(roc_auc_score(labels, scores)),
        p_value=float(test.pvalue),
        n_reference=reference_rows.num_rows,
        n_current=current_rows.num_rows,
        labels=labels,
        scores=np.asarray(scores, dtype=np.float64),
    )


def _classifier_features(
    tables: Sequence[pa.Table], kinds: Mapping[str, str]
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    blocks: list[FloatArray] = []
    for name, kind in kinds.items():
        parts = [table.column(name) for table in tables]
        if kind == "numeric":
            values = np.concatenate([part.cast(pa.float64()).to_numpy() for part in parts])
            # The models take NaN as missing but reject infinities.
            blocks.append(np.where(np.isinf(values), np.nan, values))
        else:
            blocks.append(_category_codes(parts))
    mask = np.array([kind == "categorical" for kind in kinds.values()], dtype=bool)
    return np.column_stack(blocks), mask


def _category_codes(parts: Sequence[pa.ChunkedArray]) -> FloatArray:
    """Codes by pooled frequency; the rarest categories share the last code, missing stays NaN."""
    values = pd.Series([value for part in parts for value in part.to_pylist()], dtype=object)
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    present = codes >= 0
    frequency = np.bincount(codes[present])
    remap = np.full(frequency.size, _CATEGORY_CODES - 1, dtype=np.float64)
    kept = np.argsort(-frequency, kind="stable")[: _CATEGORY_CODES - 1]
    remap[kept] = np.arange(kept.size)
    result = np.full(codes.size, np.nan)
    result[present] = remap[codes[present]]
    return result


def _domain_model(classifier: str, categorical_mask: npt.NDArray[np.bool_], seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if classifier == "hist_gradient_boosting":
        categorical = categorical_mask if categorical_mask.any() else None
        return HistGradientBoostingClassifier(categorical_features=categorical, random_state=seed)
    if classifier == "logistic_regression":
        numeric = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
        )
        categories = make_pipeline(
            SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True),
            OneHotEncoder(handle_unknown="ignore"),
        )
        transformers = [
            ("numeric", numeric, np.flatnonzero(~categorical_mask)),
            ("categorical", categories, np.flatnonzero(categorical_mask)),
        ]
        return make_pipeline(
            ColumnTransformer([item for item in transformers if len(item[2])]),
            LogisticRegression(max_iter=1_000),
        )
    raise InvalidInputError(
        f"classifier={classifier!r} is unknown; choose 'hist_gradient_boosting' or "
        "'logistic_regression'"
    )
