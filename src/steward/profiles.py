"""Profiles: mergeable summaries of one column over one time bucket.

A monitor over any window merges the profiles of the window's buckets, so its cost depends on the
number of buckets and columns, never on the rows behind them. Every field of a profile is a merge of
per-partition partials: counts and bin counts add, moments combine by Chan et al.'s formula, minima and
maxima take the extreme, and the KLL quantile sketch and the frequent-items sketch of unseen
categories merge as their library defines. ``docs/profiles.md`` explains the algebra, the storage
layout, the watermark and the error bounds of profile-mode drift.

Example::

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> binning = Binning().fit(rng.normal(size=1_000))
    >>> first = ColumnProfile.from_values(rng.normal(size=500), binning)
    >>> second = ColumnProfile.from_values(rng.normal(size=700), binning)
    >>> merged = first.merge(second)
    >>> merged.count, int(merged.bin_counts.sum())
    (1200, 1200)
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import datasketches
import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steward import drift
from steward.errors import InvalidInputError, NotFittedError, StoreError

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_MAX_CATEGORIES",
    "DEFAULT_SKETCH_K",
    "OUTPUT_COLUMNS",
    "PROFILE_METHODS",
    "Binning",
    "ColumnProfile",
    "DatasetProfile",
    "ProfileDrift",
    "ProfileRow",
    "ProfileStore",
    "build_profiles",
    "drift_from_profiles",
    "fit_binnings",
    "merge_profiles",
    "profile_frame",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_BINS: Final = 100
DEFAULT_MAX_CATEGORIES: Final = 1_000
DEFAULT_SKETCH_K: Final = 200
#: Prediction-event columns profiled by name; an input of the same name is ``"inputs.<name>"``.
OUTPUT_COLUMNS: Final = ("score", "decision")
PROFILE_METHODS: Final = ("ks", "wasserstein", "psi", "jensen_shannon", "hellinger", "chi_square")

_FORMAT: Final = 1
_KINDS: Final = ("numeric", "categorical")
# The frequent-items sketch of unseen categories tracks up to 0.75 * 2**7 = 96 values.
_UNSEEN_SKETCH_LG_SIZE: Final = 7
# Feeding every distinct unseen value would cost a Python call per value for an id-like column;
# the most frequent ones per bucket are what a reader wants to see.
_UNSEEN_FED_PER_BUCKET: Final = 256
_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECONDS: Final = {"s": 1_000_000, "ms": 1_000, "us": 1}
_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


# --- binning ---------------------------------------------------------------------------------------


class Binning:
    """Fixed bins of one column, learned from a reference, shared by every profile of that column.

    Numeric columns get bins whose inner edges are the reference quantiles at 1/bins, 2/bins, ...
    (tied edges merged); bins are ``(edge[i-1], edge[i]]`` as in ``steward.drift``, and the first
    and last are open-ended so values outside the reference range are counted. Categorical columns
    keep the ``max_categories`` most frequent reference values (as text); any other value is
    "unseen" and counted apart. ``sketch_k`` sets the KLL sketch of numeric profiles. Learned
    state: ``kind_``, ``edges_``, ``categories_`` and ``fingerprint_``.

    >>> binning = Binning(bins=4).fit([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> binning.edges_.tolist(), binning.n_bins
    ([2.0, 3.0, 4.0], 4)
    >>> Binning(max_categories=2).fit(["a", "b", "b", "c", "c", "c"]).categories_
    ('c', 'b')
    """

    def __init__(
        self,
        kind: str | None = None,
        *,
        bins: int = DEFAULT_BINS,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        sketch_k: int = DEFAULT_SKETCH_K,
    ) -> None:
        self.kind = kind
        self.bins = bins
        self.max_categories = max_categories
        self.sketch_k = sketch_k

    def fit(self, reference: object) -> Binning:
        """Learn the bins from a reference column (pandas Series, numpy array, Arrow array, list)."""
        self._check_parameters()
        array = _as_chunked(reference, "the reference column")
        kind = self.kind or str(_kind_of(array.type, "the reference column"))
        if kind == "numeric":
            values = _float_values(array, "the reference column")
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                raise InvalidInputError(
                    f"the reference column has no finite values ({values.size} rows); fit the "
                    "binning on a reference that holds numbers"
                )
            positions = np.linspace(0.0, 1.0, self.bins + 1)[1:-1]
            self.edges_: FloatArray = np.unique(np.quantile(finite, positions))
            self.categories_: tuple[str, ...] = ()
        else:
            counted = pc.value_counts(_strings(array))
            pairs = zip(
                counted.field("values").to_pylist(),
                counted.field("counts").to_pylist(),
                strict=True,
            )
            ranked = sorted(
                ((value, count) for value, count in pairs if value is not None),
                key=lambda item: (-item[1], item[0]),
            )
            if not ranked:
                raise InvalidInputError(
                    "the reference column has only missing values; fit the binning on a reference "
                    "that holds categories"
                )
            self.categories_ = tuple(value for value, _ in ranked[: self.max_categories])
            self.edges_ = np.empty(0, dtype=np.float64)
        self.kind_: str = kind
        self.fingerprint_ = _fingerprint(self._state())
        return self

    @property
    def n_bins(self) -> int:
        """Bins of a numeric binning; known categories of a categorical one (unseen kept apart)."""
        self._check_fitted()
        return self.edges_.size + 1 if self.kind_ == "numeric" else len(self.categories_)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict that :meth:`from_dict` turns back into the same binning.

        >>> Binning(bins=2).fit([1.0, 2.0, 3.0]).to_dict()["edges"]
        [2.0]
        """
        self._check_fitted()
        return {**self._state(), "fingerprint": self.fingerprint_}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Binning:
        """Rebuild a fitted binning from :meth:`to_dict` output.

        >>> saved = Binning(bins=2).fit([1.0, 2.0, 3.0]).to_dict()
        >>> Binning.from_dict(saved).fingerprint_ == saved["fingerprint"]
        True
        """
        try:
            binning = cls(
                data["kind"],
                bins=int(data["bins"]),
                max_categories=int(data["max_categories"]),
                sketch_k=int(data["sketch_k"]),
            )
            edges = np.asarray(data["edges"], dtype=np.float64)
            categories = tuple(str(category) for category in data["categories"])
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInputError(
                f"binning dict is malformed ({error!r}); pass what Binning.to_dict returned"
            ) from error
        binning._check_parameters()
        increasing = edges.ndim == 1 and bool(
            np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)
        )
        if not increasing or len(set(categories)) != len(categories):
            raise InvalidInputError(
                f"binning dict holds edges {edges.tolist()[:5]}... or categories "
                f"{list(categories)[:5]}... that are not strictly increasing finite numbers or "
                "distinct text; pass what Binning.to_dict returned"
            )
        binning.edges_, binning.categories_, binning.kind_ = edges, categories, str(data["kind"])
        binning.fingerprint_ = _fingerprint(binning._state())
        return binning

    def __repr__(self) -> str:
        if not hasattr(self, "fingerprint_"):
            return f"Binning(kind={self.kind!r}, bins={self.bins}, unfitted)"
        return f"Binning({self.kind_}, {self.n_bins} bins, fingerprint {self.fingerprint_})"

    def _state(self) -> dict[str, Any]:
        return {
            "kind": self.kind_,
            "bins": self.bins,
            "max_categories": self.max_categories,
            "sketch_k": self.sketch_k,
            "edges": self.edges_.tolist(),
            "categories": list(self.categories_),
        }

    def _check_parameters(self) -> None:
        if self.kind not in (None, *_KINDS):
            raise InvalidInputError(
                f"Binning kind={self.kind!r} is unknown; pass 'numeric', 'categorical' or None"
            )
        if self.bins < 1 or self.max_categories < 1 or not 8 <= self.sketch_k <= 65_535:
            raise InvalidInputError(
                f"Binning(bins={self.bins}, max_categories={self.max_categories}, "
                f"sketch_k={self.sketch_k}) is out of range; use bins >= 1, max_categories >= 1 "
                "and 8 <= sketch_k <= 65535"
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "fingerprint_"):
            raise NotFittedError(
                "this Binning is not fitted yet; call fit(reference_column) first, or rebuild a "
                "saved one with Binning.from_dict"
            )


def fit_binnings(
    reference: object,
    columns: Sequence[str] | None = None,
    *,
    categorical: Sequence[str] = (),
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> dict[str, Binning]:
    """Fit one :class:`Binning` per column of a reference frame (pandas or Arrow).

    ``columns`` defaults to every numeric, boolean or text column; ``categorical`` names numeric
    columns to bin as categories.

    >>> import pandas as pd
    >>> reference = pd.DataFrame({"amount": [1.0, 2.0, 3.0], "plan": ["a", "b", "a"]})
    >>> {name: binning.kind_ for name, binning in fit_binnings(reference).items()}
    {'amount': 'numeric', 'plan': 'categorical'}
    """
    table = _to_table(reference)
    if columns is None:
        columns = [
            field.name
            for field in table.schema
            if field.name in categorical or _kind_of(field.type, field.name, strict=False)
        ]
    _check_columns_present(table, columns)
    return {
        name: Binning(
            "categorical" if name in categorical else None,
            bins=bins,
            max_categories=max_categories,
        ).fit(table.column(name))
        for name in columns
    }


def _fingerprint(state: Mapping[str, Any]) -> str:
    text = json.dumps(state, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- reading columns -------------------------------------------------------------------------------


def _to_table(frame: object) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    try:
        if isinstance(frame, pd.DataFrame):
            return pa.Table.from_pandas(frame, preserve_index=False)
        if hasattr(frame, "__arrow_c_stream__"):
            return pa.table(frame)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise InvalidInputError(
            f"the frame has a column that mixes types ({error}); make each column hold only "
            "numbers or only text"
        ) from error
    raise InvalidInputError(
        f"got a {type(frame).__name__}; pass a pandas DataFrame or a pyarrow Table"
    )


def _as_chunked(values: object, what: str) -> pa.ChunkedArray:
    if isinstance(values, pa.ChunkedArray):
        return values
    if isinstance(values, pa.Array):
        return pa.chunked_array([values])
    try:
        return pa.chunked_array([pa.array(values, from_pandas=True)])
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as error:
        raise InvalidInputError(
            f"{what} cannot be read as one typed column ({error}); pass numbers or text only"
        ) from error


def _kind_of(data_type: pa.DataType, what: str, *, strict: bool = True) -> str | None:
    types = pa.types
    if types.is_integer(data_type) or types.is_floating(data_type):
        return "numeric"
    if types.is_decimal(data_type) or types.is_boolean(data_type):
        return "numeric"
    if types.is_string(data_type) or types.is_large_string(data_type):
        return "categorical"
    if types.is_dictionary(data_type) or types.is_string_view(data_type):
        return "categorical"
    if not strict:
        return None
    raise InvalidInputError(
        f"{what} holds {data_type} values, which are neither numbers nor text; pass "
        "kind='numeric' or kind='categorical', or leave the column out"
    )


def _float_values(array: pa.ChunkedArray, what: str) -> FloatArray:
    """Numbers as float64, with nulls as NaN."""
    try:
        return np.asarray(array.cast(pa.float64()).to_numpy(), dtype=np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise InvalidInputError(
            f"{what} is binned as numeric but holds {array.type} values ({error}); fit its "
            "binning with kind='categorical' or fix the data"
        ) from error


def _strings(array: pa.ChunkedArray) -> pa.Array:
    text = array if pa.types.is_string(array.type) else array.cast(pa.string())
    return text.combine_chunks()


def _category_codes(
    array: pa.ChunkedArray, categories: Sequence[str]
) -> tuple[IntArray, IntArray, pa.Array]:
    """Per row: its category's index, ``len(categories)`` when unseen, ``len + 1`` when missing;
    also each row's index into the distinct values found, and those values."""
    encoded = pc.dictionary_encode(_strings(array))
    known = len(categories)
    position = pc.index_in(encoded.dictionary, value_set=pa.array(categories, pa.string()))
    lookup = np.append(position.fill_null(known).to_numpy(), known + 1).astype(np.int64)
    indices = encoded.indices.fill_null(-1).to_numpy().astype(np.int64)
    return lookup[indices], indices, encoded.dictionary


def _check_columns_present(table: pa.Table, columns: Iterable[str]) -> None:
    missing = sorted(set(columns) - set(table.column_names))
    if missing:
        raise InvalidInputError(
            f"columns {missing} are not in the frame (it has {table.column_names[:20]}); "
            "profile only columns the frame holds"
        )


# --- column profiles -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class ColumnProfile:
    """Mergeable summary of one column's rows: counts, bin counts, moments, extremes and sketches.

    ``count`` counts every row; ``null_count`` the missing ones (null or NaN); ``violation_count``
    the contract violations the caller reported. Numeric profiles count infinite values in
    ``infinite_count`` and summarize the finite ones: ``bin_counts`` on the binning's bins,
    ``finite_count``, ``finite_mean`` and ``finite_m2`` (the sum of squared deviations),
    ``minimum``, ``maximum`` and a KLL ``sketch``. Categorical profiles hold ``bin_counts`` per
    known category, ``unseen_count`` and a frequent-items ``unseen_sketch`` of unseen values.

    >>> binning = Binning("categorical").fit(["a", "b", "b"])
    >>> profile = ColumnProfile.from_values(["a", "c", None], binning)
    >>> profile.category_counts, profile.unseen_count, profile.null_count
    ({'b': 0, 'a': 1}, 1, 1)
    """

    binning: Binning
    count: int
    null_count: int
    violation_count: int
    bin_counts: IntArray
    unseen_count: int = 0
    infinite_count: int = 0
    finite_count: int = 0
    finite_mean: float = 0.0
    finite_m2: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    sketch: Any = None
    unseen_sketch: Any = None

    @classmethod
    def from_values(
        cls, values: object, binning: Binning, *, violation_count: int = 0
    ) -> ColumnProfile:
        """Profile one batch of values; ``violation_count`` is the batch's contract violations.

        >>> binning = Binning().fit([1.0, 2.0, 3.0])
        >>> ColumnProfile.from_values([1.0, None, float("inf")], binning).infinite_count
        1
        """
        array = _as_chunked(values, "the values")
        groups = np.zeros(len(array), dtype=np.int64)
        violations = np.zeros(len(array), dtype=np.float64)
        if len(array):
            violations[0] = violation_count
        elif violation_count:
            raise InvalidInputError(
                f"violation_count={violation_count} for an empty batch; pass 0 or the batch's rows"
            )
        return _profile_groups(array, binning, groups, 1, violations, "the column")[0]

    @property
    def kind(self) -> str:
        """``"numeric"`` or ``"categorical"``, as the binning says."""
        return str(self.binning.kind_)

    @property
    def mean(self) -> float:
        """Mean of the finite values (NaN when there are none)."""
        return self.finite_mean if self.finite_count else math.nan

    @property
    def variance(self) -> float:
        """Population variance of the finite values, as ``numpy.var`` (ddof=0)."""
        return self.finite_m2 / self.finite_count if self.finite_count else math.nan

    @property
    def std(self) -> float:
        """Population standard deviation of the finite values, as ``numpy.std`` (ddof=0)."""
        return math.sqrt(self.variance)

    @property
    def category_counts(self) -> dict[str, int]:
        """Count per known category, in the binning's order (unseen values are not in it)."""
        self._require("categorical", "category_counts")
        return dict(zip(self.binning.categories_, self.bin_counts.tolist(), strict=True))

    @property
    def quantile_rank_error(self) -> float:
        """The KLL sketch's normalized rank error for one quantile (99% confidence)."""
        self._require("numeric", "quantile_rank_error")
        return float(self.sketch.normalized_rank_error(False))

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """A new profile of both profiles' rows; see :func:`merge_profiles`.

        >>> binning = Binning().fit([0.0, 1.0, 2.0])
        >>> first = ColumnProfile.from_values([0.0, 1.0], binning)
        >>> first.merge(ColumnProfile.from_values([5.0], binning)).maximum
        5.0
        """
        return merge_profiles([self, other])

    def quantile(self, q: float) -> float:
        """Approximate quantile of the finite values from the KLL sketch.

        Its rank is within ``quantile_rank_error`` of ``q`` (with 99% confidence).

        >>> binning = Binning().fit([0.0, 1.0])
        >>> ColumnProfile.from_values([1.0, 2.0, 3.0], binning).quantile(0.5)
        2.0
        """
        self._require("numeric", "quantile")
        if not 0.0 <= q <= 1.0:
            raise InvalidInputError(f"quantile q={q} is outside [0, 1]; pass a share such as 0.5")
        if not self.finite_count:
            raise InvalidInputError("this profile has no finite values; a quantile needs some")
        if q in (0.0, 1.0):  # the extremes are known exactly; the sketch may have dropped them
            return float(self.minimum if q == 0.0 else self.maximum)  # type: ignore[arg-type]
        return float(self.sketch.get_quantile(q))

    def histogram(self) -> tuple[npt.NDArray[Any], IntArray]:
        """Bin edges (with -inf and +inf at the ends) and counts; for a categorical profile, the
        known categories and their counts (``unseen_count`` holds the rest).

        >>> binning = Binning(bins=2).fit([0.0, 1.0, 2.0])
        >>> edges, counts = ColumnProfile.from_values([0.5, 1.5, 3.0], binning).histogram()
        >>> edges.tolist(), counts.tolist()
        ([-inf, 1.0, inf], [1, 2])
        """
        if self.kind == "categorical":
            return np.array(self.binning.categories_, dtype=object), self.bin_counts.copy()
        edges = np.concatenate([[-np.inf], self.binning.edges_, [np.inf]])
        return edges, self.bin_counts.copy()

    def unseen_values(self) -> list[tuple[str, int]]:
        """The most frequent unseen categories and their estimated counts, most frequent first.

        >>> binning = Binning("categorical").fit(["a"])
        >>> ColumnProfile.from_values(["x", "y", "x"], binning).unseen_values()
        [('x', 2), ('y', 1)]
        """
        self._require("categorical", "unseen_values")
        error_type = datasketches.frequent_items_error_type.NO_FALSE_NEGATIVES
        items = self.unseen_sketch.get_frequent_items(error_type)
        return sorted(((item, int(estimate)) for item, estimate, *_ in items), key=_by_count)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (sketches as base64) that :meth:`from_dict` reads back.

        >>> import json
        >>> binning = Binning().fit([0.0, 1.0])
        >>> saved = json.dumps(ColumnProfile.from_values([0.5], binning).to_dict())
        >>> ColumnProfile.from_dict(json.loads(saved)).mean
        0.5
        """
        return {
            "format": _FORMAT,
            "binning": self.binning.to_dict(),
            "count": self.count,
            "null_count": self.null_count,
            "violation_count": self.violation_count,
            "bin_counts": self.bin_counts.tolist(),
            "unseen_count": self.unseen_count,
            "infinite_count": self.infinite_count,
            "finite_count": self.finite_count,
            "finite_mean": self.finite_mean,
            "finite_m2": self.finite_m2,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "sketch": _encode_sketch(self.sketch),
            "unseen_sketch": _encode_sketch(self.unseen_sketch),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], binning: Binning | None = None) -> ColumnProfile:
        """Rebuild a profile from :meth:`to_dict` output; ``binning`` replaces a left-out one."""
        try:
            if data["format"] != _FORMAT:
                raise ValueError(f"format {data['format']!r} is not {_FORMAT}")
            binning = binning or Binning.from_dict(data["binning"])
            field = _SKETCH_FIELDS[binning.kind_]
            sketch = _SKETCH_TYPES[binning.kind_].deserialize(_decode_sketch(data[field]))
            profile = cls(
                binning=binning,
                count=int(data["count"]),
                null_count=int(data["null_count"]),
                violation_count=int(data["violation_count"]),
                bin_counts=np.asarray(data["bin_counts"], dtype=np.int64),
                unseen_count=int(data["unseen_count"]),
                infinite_count=int(data["infinite_count"]),
                finite_count=int(data["finite_count"]),
                finite_mean=float(data["finite_mean"]),
                finite_m2=float(data["finite_m2"]),
                minimum=None if data["minimum"] is None else float(data["minimum"]),
                maximum=None if data["maximum"] is None else float(data["maximum"]),
                **{field: sketch},
            )
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise InvalidInputError(
                f"profile dict is malformed ({error!r}); pass what ColumnProfile.to_dict returned"
            ) from error
        if profile.bin_counts.shape != (binning.n_bins,):
            raise InvalidInputError(
                f"profile dict holds {profile.bin_counts.size} bin counts for a binning of "
                f"{binning.n_bins} bins; pass what ColumnProfile.to_dict returned"
            )
        return profile

    def __repr__(self) -> str:
        return (
            f"ColumnProfile({self.kind}, count={self.count}, nulls={self.null_count}, "
            f"violations={self.violation_count}, binning {self.binning.fingerprint_})"
        )

    def _require(self, kind: str, what: str) -> None:
        if self.kind != kind:
            raise InvalidInputError(
                f"{what} needs a {kind} profile, but this one is {self.kind}; use it on a "
                f"{kind} column"
            )


_SKETCH_FIELDS: Final = {"numeric": "sketch", "categorical": "unseen_sketch"}
_SKETCH_TYPES: Final = {
    "numeric": datasketches.kll_doubles_sketch,
    "categorical": datasketches.frequent_strings_sketch,
}


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _encode_sketch(sketch: Any) -> str | None:
    return None if sketch is None else base64.b64encode(sketch.serialize()).decode("ascii")


def _decode_sketch(encoded: str | bytes) -> bytes:
    # ProfileStore keeps sketches as Parquet binary; to_dict gives them as base64 text.
    if isinstance(encoded, bytes):
        return encoded
    return base64.b64decode(encoded.encode("ascii"), validate=True)


def merge_profiles(profiles: Iterable[ColumnProfile]) -> ColumnProfile:
    """One profile of all the rows of several profiles of the same column and binning.

    Counts, bin counts, minima and maxima combine exactly; the mean and the sum of squared
    deviations combine by Chan et al.'s parallel formula; the sketches merge (KLL stays within its
    rank error). The result does not depend on the order of the profiles, up to rounding.

    >>> binning = Binning().fit([0.0, 1.0, 2.0, 3.0])
    >>> parts = [ColumnProfile.from_values(part, binning) for part in ([0.0, 1.0], [2.0, 3.0])]
    >>> merge_profiles(parts).variance
    1.25
    """
    parts = list(profiles)
    if not parts:
        raise InvalidInputError("merge_profiles got no profiles; pass at least one")
    first = parts[0]
    for other in parts[1:]:
        _check_same_binning(first, other, "merge")
    finite = np.array([part.finite_count for part in parts], dtype=np.float64)
    means = np.array([part.finite_mean for part in parts], dtype=np.float64)
    total = float(finite.sum())
    mean = float(np.dot(finite, means) / total) if total else 0.0
    # Chan et al.: M2 = Σ M2_i + Σ n_i (mean_i − mean)²; each term is a difference of means, so
    # nothing cancels catastrophically.
    m2 = sum(part.finite_m2 for part in parts) + float(np.dot(finite, (means - mean) ** 2))
    minima = [part.minimum for part in parts if part.minimum is not None]
    maxima = [part.maximum for part in parts if part.maximum is not None]
    return ColumnProfile(
        binning=first.binning,
        count=sum(part.count for part in parts),
        null_count=sum(part.null_count for part in parts),
        violation_count=sum(part.violation_count for part in parts),
        bin_counts=np.sum([part.bin_counts for part in parts], axis=0, dtype=np.int64),
        unseen_count=sum(part.unseen_count for part in parts),
        infinite_count=sum(part.infinite_count for part in parts),
        finite_count=int(total),
        finite_mean=mean,
        finite_m2=m2,
        minimum=min(minima) if minima else None,
        maximum=max(maxima) if maxima else None,
        sketch=_merged_sketches([part.sketch for part in parts], first.binning),
        unseen_sketch=_merged_sketches([part.unseen_sketch for part in parts], first.binning),
    )


def _merged_sketches(sketches: Sequence[Any], binning: Binning) -> Any:
    if sketches[0] is None:
        return None
    merged = _new_sketch(binning)
    for sketch in sketches:
        merged.merge(sketch)
    return merged


def _new_sketch(binning: Binning) -> Any:
    if binning.kind_ == "numeric":
        return datasketches.kll_doubles_sketch(binning.sketch_k)
    return datasketches.frequent_strings_sketch(_UNSEEN_SKETCH_LG_SIZE)


def _check_same_binning(first: ColumnProfile, other: ColumnProfile, action: str) -> None:
    if first.binning.fingerprint_ == other.binning.fingerprint_:
        return
    mine, theirs = first.binning, other.binning
    detail = f"{mine.kind_} with {mine.n_bins} bins vs {theirs.kind_} with {theirs.n_bins} bins"
    if mine.kind_ == theirs.kind_ == "numeric" and mine.n_bins == theirs.n_bins:
        index = int(np.argmax(mine.edges_ != theirs.edges_))
        detail += (
            f", first differing edge #{index}: {mine.edges_[index]!r} vs {theirs.edges_[index]!r}"
        )
    raise InvalidInputError(
        f"cannot {action} profiles with different binnings ({mine.fingerprint_} vs "
        f"{theirs.fingerprint_}: {detail}); profile both sides with the same fitted Binning"
    )


# --- profiling many groups at once -----------------------------------------------------------------


def _profile_groups(
    array: pa.ChunkedArray,
    binning: Binning,
    groups: IntArray,
    n_groups: int,
    violations: FloatArray,
    what: str,
    order: IntArray | None = None,
) -> list[ColumnProfile]:
    """One profile per group. Row ``order[i]`` of ``array`` belongs to group ``groups[i]``, and
    ``groups`` is sorted ascending, so each group's rows form one contiguous run."""
    order = np.arange(len(array)) if order is None else order
    binning._check_fitted()
    counts = np.bincount(groups, minlength=n_groups)
    broken = np.rint(np.bincount(groups, weights=violations, minlength=n_groups)).astype(np.int64)
    if binning.kind_ == "numeric":
        fields = _numeric_fields(_float_values(array, what)[order], binning, groups, n_groups)
    else:
        fields = _categorical_fields(array, order, binning, groups, n_groups)
    return [
        ColumnProfile(
            binning=binning,
            count=int(counts[group]),
            violation_count=int(broken[group]),
            **{name: values[group] for name, values in fields.items()},
        )
        for group in range(n_groups)
    ]


def _numeric_fields(
    values: FloatArray, binning: Binning, groups: IntArray, n_groups: int
) -> dict[str, list[Any]]:
    finite = np.isfinite(values)
    kept, kept_groups = values[finite], groups[finite]
    n = np.bincount(kept_groups, minlength=n_groups)
    safe_n = np.maximum(n, 1)
    mean = np.bincount(kept_groups, weights=kept, minlength=n_groups) / safe_n
    # A second pass over the deviations corrects the rounding of the first sum (numpy's mean sums
    # pairwise, so a single sequential pass would trail it on long groups).
    mean += np.bincount(kept_groups, weights=kept - mean[kept_groups], minlength=n_groups) / safe_n
    m2 = np.bincount(kept_groups, weights=(kept - mean[kept_groups]) ** 2, minlength=n_groups)
    n_bins = binning.n_bins
    # side="left" puts a value equal to an edge in the bin that edge closes: bins are (e[i-1], e[i]].
    codes = kept_groups * n_bins + np.searchsorted(binning.edges_, kept, side="left")
    bin_counts = np.bincount(codes, minlength=n_groups * n_bins).reshape(n_groups, n_bins)
    starts = np.concatenate([[0], np.cumsum(n)])
    filled = np.flatnonzero(n)
    minimum: list[float | None] = [None] * n_groups
    maximum: list[float | None] = [None] * n_groups
    if filled.size:  # rows are sorted by group, so each group's values are one contiguous run
        for group, low, high in zip(
            filled.tolist(),
            np.minimum.reduceat(kept, starts[filled]).tolist(),
            np.maximum.reduceat(kept, starts[filled]).tolist(),
            strict=True,
        ):
            minimum[group], maximum[group] = low, high
    sketches = []
    for group in range(n_groups):
        sketch = _new_sketch(binning)
        if n[group]:
            sketch.update(kept[starts[group] : starts[group + 1]])
        sketches.append(sketch)
    return {
        "null_count": np.bincount(groups[np.isnan(values)], minlength=n_groups).tolist(),
        "infinite_count": np.bincount(groups[np.isinf(values)], minlength=n_groups).tolist(),
        "bin_counts": list(bin_counts),
        "finite_count": n.tolist(),
        "finite_mean": mean.tolist(),
        "finite_m2": m2.tolist(),
        "minimum": minimum,
        "maximum": maximum,
        "sketch": sketches,
    }


def _categorical_fields(
    array: pa.ChunkedArray, order: IntArray, binning: Binning, groups: IntArray, n_groups: int
) -> dict[str, list[Any]]:
    codes, indices, distinct = _category_codes(array, binning.categories_)
    codes, indices = codes[order], indices[order]
    known = len(binning.categories_)
    table = np.bincount(groups * (known + 2) + codes, minlength=n_groups * (known + 2))
    table = table.reshape(n_groups, known + 2)
    sketches = [_new_sketch(binning) for _ in range(n_groups)]
    unseen = codes == known
    if unseen.any():
        pairs, counts = np.unique(
            groups[unseen] * len(distinct) + indices[unseen], return_counts=True
        )
        pair_groups, values = pairs // len(distinct), pairs % len(distinct)
        ranked = np.lexsort((-counts, pair_groups))  # by group, most frequent first
        sorted_groups = pair_groups[ranked]
        rank = np.arange(ranked.size) - np.searchsorted(sorted_groups, sorted_groups)
        chosen = ranked[rank < _UNSEEN_FED_PER_BUCKET]
        names = distinct.take(pa.array(values[chosen])).to_pylist()
        for group, name, count in zip(
            pair_groups[chosen].tolist(), names, counts[chosen].tolist(), strict=True
        ):
            sketches[group].update(name, count)
    return {
        "null_count": table[:, known + 1].tolist(),
        "unseen_count": table[:, known].tolist(),
        "bin_counts": list(table[:, :known]),
        "unseen_sketch": sketches,
    }


# --- profiling frames ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileRow:
    """The profile of one column over one time bucket (and one model version, when grouped).

    >>> profile = ColumnProfile.from_values([1.0], Binning().fit([0.0, 2.0]))
    >>> ProfileRow(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "amount", profile).model_version is None
    True
    """

    bucket_start: dt.datetime
    column: str
    profile: ColumnProfile
    model_version: int | None = None


def profile_frame(
    frame: object,
    binnings: Mapping[str, Binning],
    *,
    bucket: str | dt.timedelta = "1h",
    time_column: str = "event_time",
    violations: Mapping[str, npt.ArrayLike] | None = None,
    model_version_column: str | None = None,
) -> list[ProfileRow]:
    """Profile each binned column of a frame per time bucket (and per model version if named).

    Buckets are fixed durations (``"1h"``, ``"15min"``, ``"1D"``) aligned to the Unix epoch in
    UTC; naive timestamps are read as UTC. ``violations`` maps a column to one count per row of the
    contract violations on it. Work is vectorized per column; only buckets loop in Python.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({
    ...     "event_time": pd.to_datetime(["2026-01-01 00:10", "2026-01-01 01:20"], utc=True),
    ...     "amount": [1.0, 2.0]})
    >>> rows = profile_frame(frame, {"amount": Binning().fit([1.0, 2.0])})
    >>> [(row.bucket_start.hour, row.profile.count) for row in rows]
    [(0, 1), (1, 1)]
    """
    table = _to_table(frame)
    extra = [name for name in (time_column, model_version_column) if name is not None]
    _check_columns_present(table, [*binnings, *extra])
    starts = _bucket_starts(table.column(time_column), _bucket_micros(bucket), time_column)
    versions = None if model_version_column is None else table.column(model_version_column)
    order, groups, keys = _group_rows(starts, versions)

    rows: list[ProfileRow] = []
    for name, binning in binnings.items():
        per_row = _row_violations(violations, name, table.num_rows)[order]
        profiles = _profile_groups(
            table.column(name), binning, groups, len(keys), per_row, f"column {name!r}", order
        )
        rows.extend(
            ProfileRow(start, name, profile, version)
            for (start, version), profile in zip(keys, profiles, strict=True)
        )
    return rows


def _bucket_micros(bucket: str | dt.timedelta) -> int:
    try:
        nanoseconds = pd.Timedelta(bucket).value
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"bucket {bucket!r} is not a fixed duration ({error}); pass e.g. '1h', '15min' or '1D'"
        ) from error
    if nanoseconds <= 0 or nanoseconds % 1_000:
        raise InvalidInputError(
            f"bucket {bucket!r} must be a positive whole number of microseconds; pass e.g. '1h'"
        )
    return int(nanoseconds // 1_000)


def _bucket_starts(column: pa.ChunkedArray, width: int, name: str) -> IntArray:
    """Each row's bucket start in microseconds since the epoch (UTC)."""
    if not pa.types.is_timestamp(column.type) or column.null_count:
        raise InvalidInputError(
            f"time column {name!r} holds {column.type} with {column.null_count} missing values; "
            "it needs timestamps on every row (timezone-aware, or naive in UTC)"
        )
    raw = column.cast(pa.int64()).to_numpy().astype(np.int64)
    micros = raw // 1_000 if column.type.unit == "ns" else raw * _MICROSECONDS[column.type.unit]
    return micros - micros % width


def _group_rows(
    starts: IntArray, versions: pa.ChunkedArray | None
) -> tuple[IntArray, IntArray, list[tuple[dt.datetime, int | None]]]:
    """The row order that sorts rows by group, the sorted group codes, and each group's key."""
    bucket_keys, bucket_codes = np.unique(starts, return_inverse=True)
    version_keys: list[int | None] = [None]
    combined = bucket_codes.astype(np.int64)
    if versions is not None:
        encoded = pc.dictionary_encode(versions.combine_chunks())
        version_keys = [*encoded.dictionary.to_pylist(), None]
        codes = encoded.indices.fill_null(len(version_keys) - 1).to_numpy().astype(np.int64)
        combined = combined * len(version_keys) + codes
    group_keys, groups = np.unique(combined, return_inverse=True)
    order = np.argsort(groups, kind="stable")
    keys = [
        (
            _EPOCH + dt.timedelta(microseconds=int(bucket_keys[key // len(version_keys)])),
            version_keys[key % len(version_keys)],
        )
        for key in group_keys.tolist()
    ]
    return order, groups[order].astype(np.int64), keys


def _row_violations(
    violations: Mapping[str, npt.ArrayLike] | None, name: str, n_rows: int
) -> FloatArray:
    if violations is None or name not in violations:
        return np.zeros(n_rows, dtype=np.float64)
    counts = np.asarray(violations[name], dtype=np.float64)
    if counts.shape != (n_rows,) or not np.all(np.isfinite(counts) & (counts >= 0)):
        raise InvalidInputError(
            f"violations[{name!r}] must hold one count >= 0 per row ({n_rows} rows), got shape "
            f"{counts.shape}; pass 0 for rows without violations"
        )
    return counts


# --- windows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetProfile:
    """The merged profile of each column over a window.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({
    ...     "event_time": pd.to_datetime(["2026-01-01 00:10", "2026-01-01 01:20"], utc=True),
    ...     "amount": [1.0, 3.0]})
    >>> rows = profile_frame(frame, {"amount": Binning().fit([1.0, 3.0])})
    >>> DatasetProfile.from_rows(rows)["amount"].mean
    2.0
    """

    profiles: Mapping[str, ColumnProfile]

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[ProfileRow],
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        model_versions: Iterable[int | None] | None = None,
    ) -> DatasetProfile:
        """Merge rows per column, keeping buckets with ``start <= bucket_start < end`` and, when
        given, only the listed model versions."""
        wanted = None if model_versions is None else set(model_versions)
        grouped: dict[str, list[ColumnProfile]] = {}
        for row in rows:
            if start is not None and row.bucket_start < start:
                continue
            if end is not None and row.bucket_start >= end:
                continue
            if wanted is None or row.model_version in wanted:
                grouped.setdefault(row.column, []).append(row.profile)
        return cls({name: merge_profiles(parts) for name, parts in sorted(grouped.items())})

    def __getitem__(self, column: str) -> ColumnProfile:
        if column not in self.profiles:
            raise InvalidInputError(
                f"column {column!r} has no profile in this window (it has {sorted(self.profiles)}); "
                "check the column name and the window"
            )
        return self.profiles[column]

    @property
    def columns(self) -> list[str]:
        """The profiled columns, sorted."""
        return sorted(self.profiles)


# --- incremental builds from the prediction log ----------------------------------------------------


def build_profiles(
    events: object,
    binnings: Mapping[str, Binning],
    watermark: dt.datetime | None,
    *,
    bucket: str | dt.timedelta = "1h",
    until: dt.datetime | None = None,
) -> tuple[list[ProfileRow], dt.datetime | None]:
    """Profile the prediction events received after ``watermark``; return the rows and the new
    watermark.

    ``events`` has the columns of ``steward.events.PREDICTION_SCHEMA`` (as ``EventLog.scan``
    returns them). Only events with ``watermark < received_at`` (and ``received_at <= until``,
    when given) are profiled, so a re-run adds each event once. Binning names are JSON keys of
    ``inputs``, except ``score`` and ``decision`` (the event columns; an input of that name is
    ``"inputs.score"``). A late event lands in its own (old) bucket as an extra partial row, which
    the merge on read absorbs. Rows are grouped per model version.

    >>> import datetime as dt, json, pyarrow as pa
    >>> moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> events = pa.table({"event_time": [moment], "received_at": [moment], "model_version": [1],
    ...                    "inputs": [json.dumps({"amount": 2.0})], "score": [0.7]})
    >>> binnings = {"amount": Binning().fit([1.0, 3.0]), "score": Binning().fit([0.0, 1.0])}
    >>> rows, watermark = build_profiles(events, binnings, None)
    >>> [(row.column, row.profile.mean) for row in rows], watermark == moment
    ([('amount', 2.0), ('score', 0.7)], True)
    """
    table = _to_table(events)
    _check_columns_present(table, ["event_time", "received_at"])
    received = table.column("received_at")
    keep = pc.is_valid(received)
    if watermark is not None:
        keep = pc.and_(keep, pc.greater(received, _timestamp_scalar(watermark, "watermark")))
    if until is not None:
        keep = pc.and_(keep, pc.less_equal(received, _timestamp_scalar(until, "until")))
    fresh = table.filter(keep)
    if fresh.num_rows == 0:
        return [], max(filter(None, [watermark, until]), default=None)
    new_watermark = until or pc.max(fresh.column("received_at")).as_py()
    decoded, violations = _decode_events(fresh, binnings)
    versions = "model_version" if "model_version" in decoded.column_names else None
    rows = profile_frame(
        decoded, binnings, bucket=bucket, violations=violations, model_version_column=versions
    )
    return rows, new_watermark


def _timestamp_scalar(moment: dt.datetime, what: str) -> pa.Scalar:
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None:
        raise InvalidInputError(
            f"{what}={moment!r} must be a timezone-aware datetime; pass e.g. "
            "datetime(2026, 1, 1, tzinfo=timezone.utc)"
        )
    return pa.scalar(moment, type=_TIMESTAMP)


def _decode_events(
    table: pa.Table, binnings: Mapping[str, Binning]
) -> tuple[pa.Table, dict[str, FloatArray]]:
    """Decode the JSON ``inputs`` and flag, per input column, the rows whose ``violations`` name
    it, in one DuckDB pass (text that is not valid JSON, or a value of the wrong type, is null)."""
    for binning in binnings.values():
        binning._check_fitted()
    keys = {
        name: name.removeprefix("inputs.")
        for name in binnings
        if name not in OUTPUT_COLUMNS or name.startswith("inputs.")
    }
    _check_columns_present(table, ["inputs"] if keys else [])
    present = set(table.column_names)
    selected = ['"event_time"'] + ['"model_version"'] * ("model_version" in present)
    selected += [_identifier(name) for name in binnings if name not in keys]
    subquery = "SELECT *"
    if keys:
        structure = {
            key: "DOUBLE" if binnings[name].kind_ == "numeric" else "VARCHAR"
            for name, key in keys.items()
        }
        selected += [
            f"inputs_.{_identifier(key)} AS {_identifier(name)}" for name, key in keys.items()
        ]
        subquery += (
            ", CASE WHEN json_valid(inputs) THEN "
            f"from_json(inputs, {_literal(json.dumps(structure))}) END AS inputs_"
        )
    flagged = list(keys.items()) if "violations" in present else []
    if flagged:
        subquery += (
            ", CASE WHEN json_valid(violations) THEN "
            "json_extract_string(violations, '$[*].column') END AS broken_"
        )
        selected += [
            f'coalesce(list_contains(broken_, {_literal(key)}), false)::DOUBLE AS "broken_{index}"'
            for index, (_, key) in enumerate(flagged)
        ]
    sql = f"SELECT {', '.join(selected)} FROM ({subquery} FROM events)"
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.register("events", table)
        try:
            decoded = _fetch(connection.sql(sql))
        except duckdb.Error as error:
            raise InvalidInputError(
                f"could not decode the events ({error}); pass events with the columns of "
                "steward.events.PREDICTION_SCHEMA"
            ) from error
    flags = {
        name: decoded.column(f"broken_{index}").to_numpy()
        for index, (name, _) in enumerate(flagged)
    }
    return decoded, flags


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fetch(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    # duckdb 1.x returns a Table from arrow(); 2.x a reader, with to_arrow_table() for a Table.
    fetch = getattr(relation, "to_arrow_table", None)
    result = fetch() if fetch is not None else relation.arrow()
    return result if isinstance(result, pa.Table) else result.read_all()


# --- storage ---------------------------------------------------------------------------------------


class ProfileStore:
    """Profile rows as Parquet under ``root/system=<name>/``, one file per write, read with DuckDB.

    Each file holds ``bucket_start``, ``column``, ``model_version``, ``binning`` (its JSON), one
    typed column per profile field (``count``, ``null_count``, ..., ``bin_counts`` as a list, the
    sketch as binary), so SQL engines read counts without decoding anything, and the ``watermark``
    of the build that wrote it. The rename that publishes a file publishes its rows and its
    watermark together, so a crashed build is either wholly in the store or wholly redone.

    >>> import tempfile, pandas as pd
    >>> start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> frame = pd.DataFrame({"event_time": [start], "amount": [2.0]})
    >>> rows = profile_frame(frame, {"amount": Binning().fit([1.0, 3.0])})
    >>> store = ProfileStore(tempfile.mkdtemp())
    >>> _ = store.write("churn", rows, watermark=start)
    >>> store.read("churn", start, start + dt.timedelta(days=1))["amount"].mean
    2.0
    >>> store.watermark("churn") == start
    True
    >>> store.refresh(event_log, "churn", binnings)  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def write(
        self, system: str, rows: Sequence[ProfileRow], *, watermark: dt.datetime | None = None
    ) -> Path | None:
        """Write rows as one new Parquet file; nothing (and None) when there are no rows."""
        directory = self._directory(system)
        if not rows:
            return None
        table = pa.table(
            {
                "bucket_start": pa.array([row.bucket_start for row in rows], _TIMESTAMP),
                "column": pa.array([row.column for row in rows], pa.string()),
                "model_version": pa.array([row.model_version for row in rows], pa.int64()),
                "binning": [_compact_json(row.profile.binning.to_dict()) for row in rows],
                **{
                    name: pa.array([getattr(row.profile, name) for row in rows], data_type)
                    for name, data_type in _STORED_FIELDS.items()
                },
                "sketch": pa.array([_sketch_bytes(row.profile) for row in rows], pa.binary()),
                "watermark": pa.array([watermark] * len(rows), _TIMESTAMP),
            }
        )
        directory.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = directory / f"profiles-{stamp}-{secrets.token_hex(4)}.parquet"
        temporary = directory / f".{path.name}.tmp"
        with open(temporary, "wb") as file:
            pq.write_table(table, file, compression="zstd")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return path

    def watermark(self, system: str) -> dt.datetime | None:
        """The latest watermark written for a system, or None before its first build."""
        if not self._has_files(system):
            return None
        result = self._query(
            "SELECT max(watermark) AS w FROM {files} WHERE system = $system", {"system": system}
        )
        value: dt.datetime | None = result.column("w")[0].as_py()
        return value

    def read_rows(
        self,
        system: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        columns: Sequence[str] | None = None,
    ) -> list[ProfileRow]:
        """Stored rows with ``start <= bucket_start < end``, unmerged (a bucket may have several)."""
        _timestamp_scalar(start, "start")  # both raise unless timezone-aware
        _timestamp_scalar(end, "end")
        if not self._has_files(system):
            return []
        fields = ", ".join(_STORED_FIELDS)
        sql = (
            'SELECT epoch_us(bucket_start) AS bucket_start, "column", model_version, binning, '
            f"{fields}, sketch FROM {{files}} "
            "WHERE system = $system AND bucket_start >= $start AND bucket_start < $end"
        )
        parameters: dict[str, Any] = {"system": system, "start": start, "end": end}
        if columns is not None:
            sql += ' AND list_contains($columns, "column")'
            parameters["columns"] = list(columns)
        table = self._query(sql + ' ORDER BY bucket_start, "column", model_version', parameters)
        return _rows_from_table(table)

    def read(
        self,
        system: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        columns: Sequence[str] | None = None,
        model_versions: Iterable[int | None] | None = None,
    ) -> DatasetProfile:
        """The window ``[start, end)`` merged per column (optionally for some model versions).

        A bucket belongs to the window when its start does; align ``start`` and ``end`` to the
        bucket width to read whole buckets only.
        """
        rows = self.read_rows(system, start, end, columns=columns)
        return DatasetProfile.from_rows(rows, model_versions=model_versions)

    def refresh(
        self,
        log: Any,
        system: str,
        binnings: Mapping[str, Binning],
        *,
        bucket: str | dt.timedelta = "1h",
        settle: dt.timedelta = dt.timedelta(seconds=30),
        now: dt.datetime | None = None,
    ) -> int:
        """Profile a system's predictions received since the stored watermark; return rows written.

        ``log`` is a ``steward.events.EventLog``. Events received in the last ``settle`` are left
        for the next run: replicas stamp ``received_at`` with their own clocks and acknowledge in
        their own time, so the newest stamps may still be joined by slightly older ones. ``now``
        replaces the clock; never pass a time ahead of the writers' clocks, or the events they
        stamp before it are skipped for good.
        """
        watermark = self.watermark(system)
        until = (now or dt.datetime.now(dt.UTC)) - settle
        if watermark is not None and until <= watermark:
            return 0
        events = log.scan("prediction", system)
        rows, new_watermark = build_profiles(
            events, binnings, watermark, bucket=bucket, until=until
        )
        self.write(system, rows, watermark=new_watermark)
        return len(rows)

    def _directory(self, system: str) -> Path:
        if not isinstance(system, str) or not _NAME_PATTERN.fullmatch(system):
            raise InvalidInputError(
                f"system {system!r} is not a valid name: use 1-128 letters, digits, '_', '.' or "
                "'-', starting with a letter or digit (it becomes a directory name)"
            )
        return self.root / f"system={system}"

    def _has_files(self, system: str) -> bool:
        return any(self._directory(system).glob("*.parquet"))

    def _query(self, sql: str, parameters: dict[str, Any]) -> pa.Table:
        pattern = str(self.root / "system=*" / "*.parquet").replace("'", "''")
        files = (
            f"read_parquet('{pattern}', hive_partitioning = true, hive_types_autocast = false, "
            "hive_types = {'system': VARCHAR})"
        )
        with duckdb.connect() as connection:
            connection.execute("SET TimeZone = 'UTC'")
            try:
                return _fetch(connection.sql(sql.replace("{files}", files), params=parameters))
            except duckdb.Error as error:
                raise StoreError(
                    f"could not read profiles under {self.root} ({error}); check the files are "
                    "readable Parquet written by ProfileStore"
                ) from error


def _compact_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


_STORED_FIELDS: Final = {
    **dict.fromkeys(
        ["count", "null_count", "violation_count", "unseen_count", "infinite_count"], pa.int64()
    ),
    "finite_count": pa.int64(),
    **dict.fromkeys(["finite_mean", "finite_m2", "minimum", "maximum"], pa.float64()),
    "bin_counts": pa.list_(pa.int64()),
}


def _rows_from_table(table: pa.Table) -> list[ProfileRow]:
    """Profile rows from the columns ProfileStore writes, converted column by column."""
    values = {name: table.column(name).to_pylist() for name in table.column_names}
    bin_counts = table.column("bin_counts").combine_chunks()
    flat = bin_counts.flatten().to_numpy().astype(np.int64)
    offsets = bin_counts.offsets.to_numpy()
    # A window repeats a few binnings and bucket starts many times: parse each once.
    binnings = {text: Binning.from_dict(json.loads(text)) for text in set(values["binning"])}
    moments = {
        micros: _EPOCH + dt.timedelta(microseconds=micros) for micros in set(values["bucket_start"])
    }
    rows = []
    for index in range(table.num_rows):
        binning = binnings[values["binning"][index]]
        counts = flat[offsets[index] : offsets[index + 1]]
        if counts.size != binning.n_bins:
            raise StoreError(
                f"a stored profile of column {values['column'][index]!r} holds {counts.size} bin "
                f"counts for a binning of {binning.n_bins}; the file is corrupt, rebuild it"
            )
        sketch = _SKETCH_TYPES[binning.kind_].deserialize(values["sketch"][index])
        profile = ColumnProfile(
            binning=binning,
            bin_counts=counts,
            **{name: values[name][index] for name in _STORED_FIELDS if name != "bin_counts"},
            **{_SKETCH_FIELDS[binning.kind_]: sketch},
        )
        moment = moments[values["bucket_start"][index]]
        rows.append(
            ProfileRow(moment, values["column"][index], profile, values["model_version"][index])
        )
    return rows


def _sketch_bytes(profile: ColumnProfile) -> bytes:
    return bytes(getattr(profile, _SKETCH_FIELDS[profile.kind]).serialize())


# --- profile-mode drift ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileDrift:
    """A drift statistic computed from two profiles, with ``|exact − statistic| <= bound``.

    ``edges`` are the inner bin edges a binned method used (numeric columns); ``p_value`` is set
    where it follows exactly from the counts (chi-square).

    >>> result = ProfileDrift("ks", statistic=0.2, bound=0.005)
    >>> round(result.lower, 3), round(result.upper, 3)
    (0.195, 0.205)
    """

    method: str
    statistic: float
    bound: float
    p_value: float | None = None
    edges: tuple[float, ...] = ()

    @property
    def lower(self) -> float:
        """The least value the exact statistic can take."""
        return max(self.statistic - self.bound, 0.0)

    @property
    def upper(self) -> float:
        """The greatest value the exact statistic can take."""
        return self.statistic + self.bound


_BINNED_METHODS: Final = {
    "psi": drift.psi_from_counts,
    "jensen_shannon": drift.jensen_shannon_from_counts,
    "hellinger": drift.hellinger_from_counts,
}


def drift_from_profiles(
    reference: ColumnProfile, current: ColumnProfile, method: str, *, bins: int | None = 10
) -> ProfileDrift:
    """Drift between two profiles of one column, from their bins, with a bound on the error.

    ``psi``, ``jensen_shannon``, ``hellinger`` and ``chi_square`` (Cramér's V, with its p-value)
    are computed on bins by ``steward.drift``, so they equal exact mode on raw rows binned the same
    way (bound 0). For a numeric column the fine bins are first merged into ``bins`` groups of
    about equal reference mass (``None`` keeps them), as exact mode uses 10 reference-quantile bins.
    ``ks`` is bracketed by the binned CDFs: the exact statistic lies within ``bound`` of the
    midpoint, and ``bound`` is at most half the largest bin mass. ``wasserstein`` (in reference
    standard deviations) interpolates the CDFs linearly within bins; its bound is at most the
    bin-width-weighted mass, with the end bins closed by the observed minimum and maximum.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> binning = Binning().fit(rng.normal(size=5_000))
    >>> reference = ColumnProfile.from_values(rng.normal(size=5_000), binning)
    >>> current = ColumnProfile.from_values(rng.normal(0.5, size=5_000), binning)
    >>> result = drift_from_profiles(reference, current, "ks")
    >>> round(result.statistic, 2), result.bound < 0.01
    (0.19, True)
    """
    if method not in PROFILE_METHODS:
        raise InvalidInputError(
            f"method {method!r} has no profile mode; choose one of {', '.join(PROFILE_METHODS)}"
        )
    _check_same_binning(reference, current, "compare")
    if method in ("ks", "wasserstein"):
        reference._require("numeric", f"method {method!r}")
        for side, profile in (("reference", reference), ("current", current)):
            if not profile.finite_count:
                raise InvalidInputError(
                    f"the {side} profile has no finite values; {method} needs rows on both sides"
                )
        return (
            _ks_drift(reference, current)
            if method == "ks"
            else _wasserstein_drift(reference, current)
        )
    reference_counts, current_counts, edges = _comparable_counts(reference, current, bins)
    if method == "chi_square":
        result = drift.chi_square_from_counts(reference_counts, current_counts)
        return ProfileDrift(method, result.cramers_v, 0.0, result.p_value, edges)
    return ProfileDrift(
        method, _BINNED_METHODS[method](reference_counts, current_counts), 0.0, edges=edges
    )


def _comparable_counts(
    reference: ColumnProfile, current: ColumnProfile, bins: int | None
) -> tuple[IntArray, IntArray, tuple[float, ...]]:
    if reference.kind == "categorical":  # unseen values share one extra bucket, as in exact mode
        return (
            np.append(reference.bin_counts, reference.unseen_count),
            np.append(current.bin_counts, current.unseen_count),
            (),
        )
    fine_reference, fine_current = reference.bin_counts, current.bin_counts
    edges = reference.binning.edges_
    if bins is None or bins >= fine_reference.size or fine_reference.sum() == 0:
        return fine_reference, fine_current, tuple(edges.tolist())
    # A coarse bin closes after the fine bin where the reference's cumulative share reaches j/bins.
    cumulative = np.cumsum(fine_reference) / fine_reference.sum()
    last = np.unique(np.searchsorted(cumulative, np.arange(1, bins) / bins, side="left"))
    last = last[last < fine_reference.size - 1]
    starts = np.concatenate([[0], last + 1])
    return (
        np.add.reduceat(fine_reference, starts),
        np.add.reduceat(fine_current, starts),
        tuple(edges[last].tolist()),
    )


def _cdf_gaps(reference: ColumnProfile, current: ColumnProfile) -> tuple[FloatArray, ...]:
    """Bin shares p and q, and F − G at each bin's left edge and at +inf (n + 1 values)."""
    p = reference.bin_counts / reference.finite_count
    q = current.bin_counts / current.finite_count
    gaps = np.concatenate(
        [
            [0.0],
            np.cumsum(reference.bin_counts) / reference.finite_count
            - np.cumsum(current.bin_counts) / current.finite_count,
        ]
    )
    return p, q, gaps


def _ks_drift(reference: ColumnProfile, current: ColumnProfile) -> ProfileDrift:
    # At every edge both ECDFs are known exactly (bins are right-closed), so the largest gap there
    # is a lower bound. Inside bin i, F rises by at most p_i and G by at most q_i above their values
    # at the bin's left edge, so F − G stays below gap_i + p_i and above gap_i − q_i.
    p, q, gaps = _cdf_gaps(reference, current)
    lower = float(np.max(np.abs(gaps)))
    upper = float(min(1.0, np.max(np.maximum(gaps[:-1] + p, q - gaps[:-1]))))
    upper = max(upper, lower)
    return ProfileDrift("ks", (lower + upper) / 2.0, (upper - lower) / 2.0)


def _wasserstein_drift(reference: ColumnProfile, current: ColumnProfile) -> ProfileDrift:
    p, q, gaps = _cdf_gaps(reference, current)
    assert reference.minimum is not None and current.minimum is not None  # both have values
    assert reference.maximum is not None and current.maximum is not None
    low = min(reference.minimum, current.minimum)
    high = max(reference.maximum, current.maximum)
    # Outside [low, high] both CDFs are 0 or 1, so the open end bins close at the extremes.
    bounds = np.clip(np.concatenate([[low], reference.binning.edges_, [high]]), low, high)
    widths = np.diff(bounds)
    left, right = gaps[:-1], gaps[1:]
    floor, ceiling = left - q, left + p  # F − G within each bin, as for KS
    most = widths * np.maximum(np.abs(floor), np.abs(ceiling))
    least = widths * np.where(floor * ceiling <= 0, 0.0, np.minimum(np.abs(floor), np.abs(ceiling)))
    # The linear interpolation of F − G stays within [floor, ceiling]; its integral of |·|:
    spread = np.abs(left) + np.abs(right)
    crossing = (left * left + right * right) / (2.0 * np.where(spread > 0, spread, 1.0))
    estimate = float(np.sum(widths * np.where(left * right >= 0, spread / 2.0, crossing)))
    bound = max(estimate - float(np.sum(least)), float(np.sum(most)) - estimate, 0.0)
    scale = reference.std
    if scale > 0:
        return ProfileDrift("wasserstein", estimate / scale, bound / scale)
    # A constant reference: any movement is infinitely many of its (zero) standard deviations.
    moved = math.inf if float(np.sum(most)) > 0 else 0.0
    return ProfileDrift("wasserstein", moved, 0.0 if moved == 0 else math.inf)
