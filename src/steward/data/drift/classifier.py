"""The domain-classifier test: can a classifier tell current rows from reference rows?

A multivariate drift check. Per-column tests miss a change in how columns move together; a model
trained to label rows "reference" (0) or "current" (1) catches it. Scores come out of fold, from
stratified cross-validation, so with no drift they are exchangeable between the labels: the test
is the one-sided Mann–Whitney test that current rows score higher, and the effect size is the ROC
AUC of those scores (0.5: indistinguishable). ``steward.data.drift`` runs it as the
``"domain_classifier"`` method, reported under the column ``ALL_COLUMNS``.

This module also reads the data frames for ``steward.data.drift`` (``_to_table``, ``_resolve_kinds``,
``_check_current_columns``, ``_numeric_values``, ``_category_counts``, ``_sample_rows``): both take
the same inputs and pick columns the same way.

Example::

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"x": rng.normal(size=500)})
    >>> current = pd.DataFrame({"x": rng.normal(1.0, size=500)})
    >>> domain_classifier_test(reference, current).p_value < 0.01
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from steward.data.drift.stats import keyed_rng, resolve_seed
from steward.errors import InvalidInputError

__all__ = ["ALL_COLUMNS", "DomainClassifierResult", "domain_classifier_test"]

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
    reference_table = _to_table(reference, "reference")
    current_table = _to_table(current, "current")
    kinds, _ = _resolve_kinds(reference_table, columns, categorical)
    _check_current_columns(current_table, kinds)
    rng = keyed_rng(resolve_seed(random_state), ALL_COLUMNS)
    return _run_domain_classifier(
        _sample_rows(reference_table, max_rows, rng),
        _sample_rows(current_table, max_rows, rng),
        kinds,
        classifier,
        n_folds,
        rng,
    )


# --- the classifier --------------------------------------------------------------------------------


def _run_domain_classifier(
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


# --- reading data frames (shared with steward.drift) -----------------------------------------------
# They sit here, not in steward.drift, because drift imports this module: a reader module of their
# own would suit them better.


def _to_table(frame: object, side: str) -> pa.Table:
    """The data as a pyarrow Table: pandas and Arrow directly, polars (and others) by the Arrow
    C stream interface, so polars itself need not be installed."""
    if isinstance(frame, pa.Table):
        table = frame
    elif isinstance(frame, pd.DataFrame):
        table = _pandas_to_table(frame, side)
    elif hasattr(frame, "__arrow_c_stream__"):
        table = pa.table(frame)
    elif hasattr(frame, "to_arrow"):
        table = frame.to_arrow()
    else:
        raise InvalidInputError(
            f"the {side} data is a {type(frame).__name__}; pass a pandas DataFrame, a pyarrow Table "
            "or a polars DataFrame"
        )
    if table.num_rows == 0:
        raise InvalidInputError(f"the {side} data has no rows; pass at least one row on each side")
    if len(set(table.column_names)) != table.num_columns:
        raise InvalidInputError(
            f"the {side} data repeats column names {table.column_names}; give each column one name"
        )
    return table


def _pandas_to_table(frame: pd.DataFrame, side: str) -> pa.Table:
    arrays, names = [], []
    for name, series in frame.items():
        try:
            arrays.append(pa.array(series, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise InvalidInputError(
                f"column {str(name)!r} of the {side} data mixes types ({error}); make it hold only "
                "numbers or only strings"
            ) from error
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def _arrow_kind(data_type: pa.DataType) -> str | None:
    types = pa.types
    if types.is_dictionary(data_type) or types.is_string(data_type):
        return "categorical"
    if types.is_large_string(data_type) or types.is_string_view(data_type):
        return "categorical"
    if types.is_integer(data_type) or types.is_floating(data_type) or types.is_decimal(data_type):
        return "numeric"
    if types.is_boolean(data_type):
        return "numeric"  # 0/1 unless the user says categorical=
    if types.is_null(data_type):
        return "null"
    return None


def _resolve_kinds(
    table: pa.Table, columns: Sequence[str] | None, categorical: Sequence[str] | None
) -> tuple[dict[str, str], dict[str, str]]:
    """Kind ("numeric" or "categorical") of each column to compare, and the columns left out, why."""
    names = list(table.column_names if columns is None else columns)
    forced = set(categorical or ())
    unknown = [name for name in [*names, *forced] if name not in table.column_names]
    if unknown:
        raise InvalidInputError(
            f"column(s) {unknown} are not in the reference data, which has {table.column_names}; "
            "check the names given to columns= and categorical="
        )
    if forced - set(names):
        raise InvalidInputError(
            f"categorical= names {sorted(forced - set(names))}, which columns= leaves out; add them "
            "to columns= or drop them from categorical="
        )
    kinds: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in names:
        data_type = table.schema.field(name).type
        kind = _arrow_kind(data_type)
        if kind in ("numeric", "categorical"):
            kinds[name] = "categorical" if name in forced else str(kind)
        elif columns is None:
            skipped[name] = f"type {data_type} is neither numeric nor categorical"
        else:
            raise InvalidInputError(
                f"column {name!r} has type {data_type}, which drift cannot compare; leave it out of "
                "columns= (numbers, booleans and strings can be compared)"
            )
    if not kinds:
        raise InvalidInputError(
            f"no column to compare: {skipped}; pass data with numeric or string columns"
        )
    return kinds, skipped


def _check_current_columns(table: pa.Table, kinds: Mapping[str, str]) -> None:
    missing = [name for name in kinds if name not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"column(s) {missing} are in the reference but missing from the current data (it has "
            f"{table.column_names}); add them, or leave them out with columns=[...]"
        )
    for name, kind in kinds.items():
        current_kind = _arrow_kind(table.schema.field(name).type)
        # Numeric columns are checked in _numeric_values; categories of another type (ints where the
        # reference had strings) are compared as they are and show up as unseen categories.
        if kind == "numeric" or current_kind is not None:
            continue
        raise InvalidInputError(
            f"column {name!r} holds categories in the reference but "
            f"{table.schema.field(name).type} in the current data; fix the data or leave it out"
        )


def _numeric_values(column: pa.ChunkedArray, name: str, side: str) -> tuple[FloatArray, int]:
    """The non-missing values of a numeric column, and how many were missing."""
    if _arrow_kind(column.type) not in ("numeric", "null"):
        first = next((value for value in column.to_pylist() if value is not None), None)
        raise InvalidInputError(
            f"column {name!r} is numeric in the reference but the {side} data holds {column.type} "
            f"values (first: {first!r}); fix the data, or pass categorical=[{name!r}] to compare it "
            "as categories"
        )
    values = np.asarray(column.cast(pa.float64()).to_numpy(), dtype=np.float64)
    missing = np.isnan(values)
    n_missing = int(missing.sum())
    if n_missing:
        values = values[~missing]
    if values.size == 0:
        raise InvalidInputError(
            f"column {name!r} has no non-missing values in the {side} data ({n_missing} rows); "
            "leave it out with columns=[...] and watch its missing rate with a data-quality check"
        )
    n_infinite = int(np.count_nonzero(np.isinf(values)))
    if n_infinite:
        raise InvalidInputError(
            f"column {name!r} holds {n_infinite} infinite values in the {side} data; replace them "
            "with missing values or finite numbers"
        )
    return values, n_missing


def _category_counts(column: pa.ChunkedArray, name: str, side: str) -> tuple[dict[Any, int], int]:
    """Count per category of a column, and how many values were missing (null or NaN)."""
    counted = pc.value_counts(column)
    counts: dict[Any, int] = {}
    n_missing = 0
    for value, count in zip(
        counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
    ):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            n_missing += count
        else:
            counts[value] = counts.get(value, 0) + count
    if not counts:
        raise InvalidInputError(
            f"column {name!r} has no non-missing values in the {side} data ({n_missing} rows); "
            "leave it out with columns=[...] and watch its missing rate with a data-quality check"
        )
    return counts, n_missing


def _sample_rows(table: pa.Table, max_rows: int, rng: np.random.Generator) -> pa.Table:
    if table.num_rows <= max_rows:
        return table
    return table.take(np.sort(rng.choice(table.num_rows, size=max_rows, replace=False)))
