"""Profiles: mergeable summaries of one column over one time bucket.

A monitor over any window merges the profiles of the window's buckets, so its cost depends on the
number of buckets and columns, never on the rows behind them. Every field of a profile is a merge of
per-partition partials: counts and bin counts add, moments combine by Chan et al.'s formula, minima and
maxima take the extreme, and the KLL quantile sketch and the frequent-items sketch of unseen
categories merge as their library defines. Profile-mode drift compares two profiles
(``drift_from_profiles``, with an error bound) or two whole windows (``compare_profiles``, with
p-values and alarms, in the ``DriftReport`` of ``steward.data.drift``). Time-bucketed series and their
Parquet storage (``profile_frame``, ``build_profiles``, ``ProfileStore``) are in
``steward.data.profiles.store``; this module re-exports them. ``docs/profiles.md`` explains the algebra,
the storage layout, the watermark and the error bounds of profile-mode drift.

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
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import datasketches
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from steward.data import drift
from steward.data.drift.stats import (
    CategoricalReference,
    _empirical_p_value,
    _null_counts,
    keyed_rng,
    resampled_tests_from_counts,
    resolve_seed,
)
from steward.errors import InvalidInputError, NotFittedError

if TYPE_CHECKING:
    from steward.data.profiles.store import (
        LATENESS_COLUMN,
        OUTPUT_COLUMNS,
        ProfileRow,
        ProfileStore,
        build_profiles,
        profile_frame,
    )

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_MAX_CATEGORIES",
    "DEFAULT_SKETCH_K",
    "LATENESS_COLUMN",
    "OUTPUT_COLUMNS",
    "PROFILE_METHODS",
    "Binning",
    "ColumnProfile",
    "DatasetProfile",
    "ProfileDrift",
    "ProfileRow",
    "ProfileStore",
    "build_profiles",
    "compare_profiles",
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
PROFILE_METHODS: Final = ("ks", "wasserstein", "psi", "jensen_shannon", "hellinger", "chi_square")

_FORMAT: Final = 1
_KINDS: Final = ("numeric", "categorical")
# The frequent-items sketch of unseen categories tracks up to 0.75 * 2**7 = 96 values.
_UNSEEN_SKETCH_LG_SIZE: Final = 7
# Feeding every distinct unseen value would cost a Python call per value for an id-like column;
# the most frequent ones per bucket are what a reader wants to see.
_UNSEEN_FED_PER_BUCKET: Final = 256
# Profile series and their storage live in steward.profile_store, which imports this module; its
# names are re-exported here on first use, so `from steward.data.profiles import ProfileStore` works.
_MOVED_TO_PROFILE_STORE: Final = frozenset(
    {
        "LATENESS_COLUMN",
        "OUTPUT_COLUMNS",
        "ProfileRow",
        "ProfileStore",
        "build_profiles",
        "profile_frame",
    }
)


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_PROFILE_STORE:
        from steward.data.profiles import store as profile_store

        return getattr(profile_store, name)
    raise AttributeError(f"module 'steward.data.profiles' has no attribute {name!r}")


# --- binning ---------------------------------------------------------------------------------------


class Binning:
    """Fixed bins of one column, learned from a reference, shared by every profile of that column.

    Numeric columns get bins whose inner edges are the reference quantiles at 1/bins, 2/bins, ...
    (tied edges merged); bins are ``(edge[i-1], edge[i]]`` as in ``steward.data.drift``, and the first
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
    binnings = {}
    for name in columns:
        kind = "categorical" if name in categorical else None
        binning = Binning(kind, bins=bins, max_categories=max_categories)
        try:
            binnings[name] = binning.fit(table.column(name))
        except InvalidInputError as error:  # the message says "the reference column"; name it
            raise InvalidInputError(f"column {name!r}: {error}") from None
    return binnings


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


# --- windows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetProfile:
    """The merged profile of each column over a window.

    Built from stored rows (``from_rows``, as ``ProfileStore.read`` does) or straight from a frame
    that is one window (``from_frame``).

    >>> import pandas as pd
    >>> from steward.data.profiles.store import profile_frame
    >>> frame = pd.DataFrame({
    ...     "event_time": pd.to_datetime(["2026-01-01 00:10", "2026-01-01 01:20"], utc=True),
    ...     "amount": [1.0, 3.0]})
    >>> rows = profile_frame(frame, {"amount": Binning().fit([1.0, 3.0])})
    >>> DatasetProfile.from_rows(rows)["amount"].mean
    2.0
    """

    profiles: Mapping[str, ColumnProfile]

    @classmethod
    def from_frame(cls, frame: object, binnings: Mapping[str, Binning]) -> DatasetProfile:
        """Profile each binned column of a frame (pandas or Arrow) as one window, no time buckets.

        >>> import pandas as pd
        >>> frame = pd.DataFrame({"amount": [1.0, 3.0], "plan": ["a", "b"]})
        >>> window = DatasetProfile.from_frame(frame, fit_binnings(frame))
        >>> window.columns, window["amount"].mean
        (['amount', 'plan'], 2.0)
        """
        table = _to_table(frame)
        _check_columns_present(table, binnings)
        groups = np.zeros(table.num_rows, dtype=np.int64)
        violations = np.zeros(table.num_rows, dtype=np.float64)
        return cls(
            {
                name: _profile_groups(
                    table.column(name), binning, groups, 1, violations, f"column {name!r}"
                )[0]
                for name, binning in binnings.items()
            }
        )

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


# --- profile-mode drift ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileDrift:
    """A drift statistic computed from two profiles, with ``|exact − statistic| <= bound``.

    ``edges`` are the inner bin edges a binned method used (numeric columns); ``p_value`` is set
    where it follows exactly from the counts (chi-square). :func:`compare_profiles` gives every
    method a p-value.

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
    are computed on bins by ``steward.data.drift``, so they equal exact mode on raw rows binned the same
    way (bound 0). For a numeric column the fine bins are first merged into ``bins`` groups of
    about equal reference mass (``None`` keeps them), as exact mode uses 10 reference-quantile bins.
    ``ks`` is bracketed by the binned CDFs: the exact statistic lies within ``bound`` of the
    midpoint, and ``bound`` is at most half the largest bin mass. ``wasserstein`` (in reference
    standard deviations) interpolates the CDFs linearly within bins; its bound is at most the
    bin-width-weighted mass, with the end bins closed by the observed minimum and maximum.
    :func:`compare_profiles` runs every method on every column and adds p-values and alarms.

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
        if method == "ks":
            return _ks_drift(reference, current)
        return _wasserstein_drift(reference, current)[0]
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


# The two functions below take bin counts with bins on the last axis, so that one call scores the
# observed profiles and another every resampled pair of the null, by the same arithmetic.


def _ks_range(
    reference_counts: FloatArray, current_counts: FloatArray, widths: FloatArray
) -> FloatArray:
    """The least and greatest KS statistic the bin counts allow, stacked on a new first axis."""
    # At every edge both ECDFs are known exactly (bins are right-closed), so the largest gap there
    # is a lower bound. Inside bin i, F rises by at most p_i and G by at most q_i above their values
    # at the bin's left edge, so F − G stays below gap_i + p_i and above gap_i − q_i. A bin of zero
    # width within the observed [min, max] holds one value at most, so F − G only steps there.
    p = reference_counts / reference_counts.sum(axis=-1, keepdims=True)
    q = current_counts / current_counts.sum(axis=-1, keepdims=True)
    right = np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1)  # F − G at each bin's right edge
    left = np.concatenate([np.zeros_like(right[..., :1]), right[..., :-1]], axis=-1)
    lower = np.max(np.abs(right), axis=-1)
    inside = np.where(widths > 0, np.maximum(left + p, q - left), 0.0)
    upper = np.minimum(1.0, np.max(inside, axis=-1))
    return np.stack([lower, np.maximum(upper, lower)])


def _wasserstein_range(
    reference_counts: FloatArray, current_counts: FloatArray, widths: FloatArray
) -> FloatArray:
    """The interpolated W1 and the least and greatest W1 the counts allow, stacked on a new axis."""
    p = reference_counts / reference_counts.sum(axis=-1, keepdims=True)
    q = current_counts / current_counts.sum(axis=-1, keepdims=True)
    right = np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1)
    left = np.concatenate([np.zeros_like(right[..., :1]), right[..., :-1]], axis=-1)
    floor, ceiling = left - q, left + p  # F − G within each bin, as for KS
    most = widths * np.maximum(np.abs(floor), np.abs(ceiling))
    least = widths * np.where(floor * ceiling <= 0, 0.0, np.minimum(np.abs(floor), np.abs(ceiling)))
    # The linear interpolation of F − G stays within [floor, ceiling]; its integral of |·|:
    spread = np.abs(left) + np.abs(right)
    crossing = (left * left + right * right) / (2.0 * np.where(spread > 0, spread, 1.0))
    estimate = np.sum(widths * np.where(left * right >= 0, spread / 2.0, crossing), axis=-1)
    return np.stack([estimate, np.sum(least, axis=-1), np.sum(most, axis=-1)])


def _ks_drift(reference: ColumnProfile, current: ColumnProfile) -> ProfileDrift:
    lower, upper = _ks_range(
        reference.bin_counts.astype(np.float64),
        current.bin_counts.astype(np.float64),
        _bin_widths(reference, current),
    )
    return ProfileDrift("ks", float(lower + upper) / 2.0, float(upper - lower) / 2.0)


def _bin_widths(reference: ColumnProfile, current: ColumnProfile) -> FloatArray:
    """Each bin's width within the observed [min, max] of both sides (0 when it holds one value)."""
    assert reference.minimum is not None and current.minimum is not None  # both have values
    assert reference.maximum is not None and current.maximum is not None
    low = min(reference.minimum, current.minimum)
    high = max(reference.maximum, current.maximum)
    # Outside [low, high] both CDFs are 0 or 1, so the open end bins close at the extremes.
    bounds = np.clip(np.concatenate([[low], reference.binning.edges_, [high]]), low, high)
    return np.diff(bounds)


def _wasserstein_drift(
    reference: ColumnProfile, current: ColumnProfile
) -> tuple[ProfileDrift, FloatArray]:
    """The result, and the bin widths its null must be scored with."""
    widths = _bin_widths(reference, current)
    estimate, least, most = _wasserstein_range(
        reference.bin_counts.astype(np.float64), current.bin_counts.astype(np.float64), widths
    ).tolist()
    bound = max(estimate - least, most - estimate, 0.0)
    scale = reference.std
    if scale > 0:
        return ProfileDrift("wasserstein", estimate / scale, bound / scale), widths
    # A constant reference: any movement is infinitely many of its (zero) standard deviations. The
    # extremes are exact, so whether the current moved (a value other than the constant) is known
    # exactly, and so is the statistic.
    moved = reference.minimum != current.minimum or reference.maximum != current.maximum
    return ProfileDrift("wasserstein", math.inf if moved else 0.0, 0.0), widths


# --- profile-mode comparison of whole windows ------------------------------------------------------


def compare_profiles(
    reference: DatasetProfile,
    current: DatasetProfile,
    *,
    columns: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    floors: Mapping[str, float | Mapping[str, float]] | None = None,
    alpha: float = 0.05,
    correction: str = "bh",
    random_state: int | None = 0,
    bins: int = 10,
    n_resamples: int | None = None,
) -> drift.DriftReport:
    """Compare two windows of profiles column by column, as ``steward.data.drift.compare`` compares rows.

    Every (column, method) gets the statistic of :func:`drift_from_profiles` and a p-value from a
    null resampled from the reference's bin frequencies alone: reference and current bin counts of
    the two windows' sizes drawn from them, scored by the same arithmetic as the observed pair (KS
    and Wasserstein on the fine bins, PSI, Jensen–Shannon and Hellinger on ``bins`` coarse bins);
    chi-square keeps its theoretical p-value. The p-values are adjusted together (``correction``)
    and a pair alarms when it is significant and its statistic minus its error bound still exceeds
    the floor: the report's ``threshold`` is the floor plus the bound, so ``alarm`` is
    ``significant and statistic > threshold`` as in exact mode, and where profile mode alarms the
    exact statistic exceeds the floor too (profile mode is conservative). ``columns`` defaults to
    every column of ``reference``; the other settings are those of ``steward.data.drift.compare`` (the
    domain classifier needs rows, so it has no profile mode).

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"amount": rng.normal(size=2_000), "plan": rng.choice(["a", "b"], 2_000)})
    >>> binnings = fit_binnings(frame)
    >>> later = frame.assign(amount=rng.normal(1.0, size=2_000))
    >>> report = compare_profiles(
    ...     DatasetProfile.from_frame(frame, binnings), DatasetProfile.from_frame(later, binnings))
    >>> report.alarmed_columns
    ['amount']
    """
    drift._check_settings(alpha, correction, bins)
    names = _compared_columns(reference, current, columns)
    kinds = {name: reference[name].kind for name in names}
    per_column, domain = drift._resolve_methods(kinds, methods)
    if domain:
        raise InvalidInputError(
            "the domain classifier needs raw rows, which profiles do not keep; leave "
            "'domain_classifier' out of methods, or run steward.drift.compare on the rows"
        )
    floors_by_test = drift._resolve_floors(floors, per_column, False)
    resamples = drift._resample_count(n_resamples, len(floors_by_test), alpha)
    seed = resolve_seed(random_state)
    outcomes, thresholds, summaries = [], {}, {}
    for name, column_methods in per_column.items():
        pair = reference[name], current[name]
        rng = keyed_rng(seed, name)
        for result in _profile_tests(*pair, column_methods, bins, resamples, rng):
            assert result.p_value is not None  # _profile_tests sets every p-value
            outcomes.append(drift._Outcome(name, result.method, result.statistic, result.p_value))
            thresholds[(name, result.method)] = floors_by_test[(name, result.method)] + result.bound
        summaries[name] = _profile_summary(name, *pair, bins)
    return drift._build_report(
        outcomes, summaries, thresholds, (alpha, correction, resamples), skipped={}
    )


def _compared_columns(
    reference: DatasetProfile, current: DatasetProfile, columns: Sequence[str] | None
) -> list[str]:
    names = list(reference.profiles) if columns is None else list(dict.fromkeys(columns))
    if not names:
        raise InvalidInputError("there are no columns to compare; profile at least one column")
    for side, window in (("reference", reference), ("current", current)):
        missing = [name for name in names if name not in window.profiles]
        if missing:
            raise InvalidInputError(
                f"columns {missing} have no profile in the {side} window (it has "
                f"{window.columns[:20]}); profile them on both sides, or leave them out of columns"
            )
    for name in names:
        first, second = reference.profiles[name], current.profiles[name]
        try:
            _check_same_binning(first, second, "compare")
        except InvalidInputError as error:
            raise InvalidInputError(f"column {name!r}: {error}") from None
        for side, profile in (("reference", first), ("current", second)):
            if _compared_rows(profile) == 0:
                raise InvalidInputError(
                    f"column {name!r} has no values to compare in the {side} window "
                    f"({profile.count} rows, {profile.null_count} missing); drift needs rows on "
                    "both sides, so widen the window or leave the column out"
                )
    return names


def _compared_rows(profile: ColumnProfile) -> int:
    if profile.kind == "numeric":
        return profile.finite_count
    return int(profile.bin_counts.sum()) + profile.unseen_count


def _profile_tests(
    reference: ColumnProfile,
    current: ColumnProfile,
    methods: Sequence[str],
    bins: int,
    n_resamples: int,
    rng: np.random.Generator,
) -> list[ProfileDrift]:
    """Each method's statistic, error bound and resampled (or, for chi-square, theoretical) p-value."""
    found: dict[str, ProfileDrift] = {}
    reference_counts, current_counts, edges = _comparable_counts(reference, current, bins)
    binned = [method for method in methods if method in _BINNED_METHODS]
    if binned:
        tested = resampled_tests_from_counts(
            reference_counts, current_counts, binned, n_resamples=n_resamples, rng=rng
        )
        for method, result in tested.items():
            found[method] = ProfileDrift(method, result.statistic, 0.0, result.p_value, edges)
    if "chi_square" in methods:
        found["chi_square"] = drift_from_profiles(reference, current, "chi_square")
    if "ks" in methods or "wasserstein" in methods:
        found.update(_cdf_tests(reference, current, methods, n_resamples, rng))
    return [found[method] for method in methods]


def _cdf_tests(
    reference: ColumnProfile,
    current: ColumnProfile,
    methods: Sequence[str],
    n_resamples: int,
    rng: np.random.Generator,
) -> dict[str, ProfileDrift]:
    """KS and Wasserstein with p-values from one null drawn on the fine bins."""
    null_reference, null_current = _null_counts(
        reference.bin_counts.astype(np.float64), current.finite_count, rng, n_resamples
    )
    found = {}
    if "ks" in methods:
        observed = _ks_drift(reference, current)
        widths = _bin_widths(reference, current)
        null = np.mean(_ks_range(null_reference, null_current, widths), axis=0)  # the midpoints
        p_value = _empirical_p_value(null, observed.statistic)
        found["ks"] = dataclasses.replace(observed, p_value=p_value)
    if "wasserstein" in methods:
        observed, widths = _wasserstein_drift(reference, current)
        if reference.std > 0:
            null = _wasserstein_range(null_reference, null_current, widths)[0] / reference.std
            p_value = _empirical_p_value(null, observed.statistic)
        else:  # draws from a constant reference never move, so a moved current beats them all
            p_value = 1.0 if observed.statistic == 0 else 1.0 / (1.0 + n_resamples)
        found["wasserstein"] = dataclasses.replace(observed, p_value=p_value)
    return found


def _profile_summary(
    name: str, reference: ColumnProfile, current: ColumnProfile, bins: int
) -> drift.ColumnSummary:
    """Sizes, missing values (null, NaN or infinite: rows not compared) and a plot per column."""
    if reference.kind == "categorical":
        return _categorical_profile_summary(name, reference, current)
    reference_counts, current_counts, edges = _comparable_counts(reference, current, bins)
    labels = [f"≤ {edges[0]:.4g}"] if edges else ["all"]
    labels += [f"({left:.4g}, {right:.4g}]" for left, right in itertools.pairwise(edges)]
    labels += [f"> {edges[-1]:.4g}"] if edges else []
    return drift.ColumnSummary(
        column=name,
        kind="numeric",
        n_reference=reference.finite_count,
        n_current=current.finite_count,
        n_missing_reference=reference.null_count + reference.infinite_count,
        n_missing_current=current.null_count + current.infinite_count,
        plot=drift.ColumnPlot(
            labels=tuple(labels),
            reference_shares=tuple((reference_counts / reference_counts.sum()).tolist()),
            current_shares=tuple((current_counts / current_counts.sum()).tolist()),
        ),
    )


def _categorical_profile_summary(
    name: str, reference: ColumnProfile, current: ColumnProfile
) -> drift.ColumnSummary:
    # Categories outside the binning are known by the frequent-items sketch only (estimates); when
    # the reference had none, every such current row is one the reference never saw, exactly.
    seen = CategoricalReference.from_counts(
        {**dict(reference.unseen_values()), **reference.category_counts}
    )
    counts = {**dict(current.unseen_values()), **current.category_counts}
    summary = drift._categorical_summary(
        name, seen, reference.null_count, counts, current.null_count
    )
    exact_unseen = current.unseen_count if reference.unseen_count == 0 else summary.n_unseen
    return dataclasses.replace(
        summary,
        n_reference=_compared_rows(reference),
        n_current=_compared_rows(current),
        n_unseen=exact_unseen,
    )
