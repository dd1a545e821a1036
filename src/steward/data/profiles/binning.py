"""Binnings: the fixed bins of one column, learned once from a reference, shared by its profiles.

A :class:`Binning` (one column) or :func:`fit_binnings` (every column of a frame) learns quantile
edges for a numeric column, or the most frequent values of a categorical one. This module also
reads the columns profiles are built from, whatever they come as (pandas, numpy, Arrow, lists):
:func:`as_chunked`, :func:`float_values`, :func:`category_codes` and
:func:`check_columns_present`.

Example::

    >>> Binning(bins=4).fit([1.0, 2.0, 3.0, 4.0, 5.0]).quantiles_.tolist()
    [1.0, 2.0, 3.0, 4.0, 5.0]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from steward._util.frames import to_arrow_table
from steward._util.threads import COLUMN_THREADS, PARALLEL_VALUES, map_on_threads
from steward.data.drift.stats import quantile_values
from steward.errors import InvalidInputError, NotFittedError

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_MAX_CATEGORIES",
    "DEFAULT_SKETCH_K",
    "Binning",
    "as_chunked",
    "category_codes",
    "check_columns_present",
    "fit_binnings",
    "float_values",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_BINS: Final = 100
DEFAULT_MAX_CATEGORIES: Final = 1_000
DEFAULT_SKETCH_K: Final = 200

_KINDS: Final = ("numeric", "categorical")


class Binning:
    """Fixed bins of one column, learned from a reference, shared by every profile of that column.

    Numeric columns get bins whose edges are the reference quantiles at 0, 1/bins, ..., 1
    (``steward.data.drift.stats.quantile_values``: values of the reference, never interpolated),
    tied edges merged, plus one edge just below the reference minimum. Bins are
    ``(edge[i-1], edge[i]]`` as in ``steward.data.drift``; the first bin, open below, and the last,
    open above, hold only values outside the reference range, and the bin just above the first
    holds the reference minimum alone. ``quantiles_`` keeps the ``bins + 1`` quantiles with their
    ties, so that :meth:`coarse_edges` gives exactly the edges exact mode draws from the same
    reference with fewer bins. Categorical columns keep the ``max_categories`` most frequent
    reference values (as text); any other value is "unseen" and counted apart. ``sketch_k`` sets
    the KLL sketch of numeric profiles. Learned state: ``kind_``, ``edges_``, ``quantiles_``
    (None for a categorical binning, and for a numeric one stored before they were kept),
    ``categories_`` and ``fingerprint_``.

    >>> binning = Binning(bins=4).fit([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> binning.edges_.tolist()[1:], binning.n_bins
    ([1.0, 2.0, 3.0, 4.0, 5.0], 7)
    >>> binning.coarse_edges(2).tolist()
    [3.0]
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
        array = as_chunked(reference, "the reference column")
        kind = self.kind or str(_kind_of(array.type, "the reference column"))
        if kind == "numeric":
            values = float_values(array, "the reference column")
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                raise InvalidInputError(
                    f"the reference column has no finite values ({values.size} rows); fit the "
                    "binning on a reference that holds numbers"
                )
            self.quantiles_: FloatArray | None = quantile_values(np.sort(finite), self.bins)
            self.edges_: FloatArray = _edges_from_quantiles(self.quantiles_)
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
            self.quantiles_ = None
        self.kind_: str = kind
        self.fingerprint_ = _fingerprint(self._state())
        return self

    @property
    def n_bins(self) -> int:
        """Bins of a numeric binning; known categories of a categorical one (unseen kept apart)."""
        self.check_fitted()
        return self.edges_.size + 1 if self.kind_ == "numeric" else len(self.categories_)

    @property
    def anchors(self) -> FloatArray:
        """Per numeric bin, the edge its profiles' ``bin_sums`` are measured from: the bin's right
        edge, and for the last bin (open above) its left edge.

        >>> Binning(bins=2).fit([1.0, 2.0, 3.0]).anchors.tolist()[1:]
        [1.0, 2.0, 3.0, 3.0]
        """
        self.check_fitted()
        if (
            not self.edges_.size
        ):  # one bin, open at both ends (a binning of bins=1 stored without quantiles)
            return np.zeros(1, dtype=np.float64)
        return np.append(self.edges_, self.edges_[-1])

    def coarse_edges(self, bins: int) -> FloatArray | None:
        """Inner edges of ``bins`` coarse bins, each closing at a fine edge, or None.

        They are the quantiles at 1/bins, ..., (bins-1)/bins among ``quantiles_`` (ties merged),
        so they equal ``steward.data.drift.stats.quantile_edges(reference, bins)`` of the data this
        binning was fitted on, when ``bins`` divides ``self.bins``. Otherwise, or for a binning
        stored without its quantiles, there are no such edges: None.

        >>> Binning(bins=100).fit(list(range(1, 201))).coarse_edges(4).tolist()
        [50.0, 100.0, 150.0]
        """
        self.check_fitted()
        if self.quantiles_ is None or bins < 1 or self.bins % bins:
            return None
        step = self.bins // bins
        return np.unique(self.quantiles_[step:-1:step])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict that :meth:`from_dict` turns back into the same binning.

        >>> Binning(bins=2).fit([1.0, 2.0, 3.0]).to_dict()["quantiles"]
        [1.0, 2.0, 3.0]
        """
        self.check_fitted()
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
            # Binnings stored before the quantiles were kept have none; they still work.
            stored = data.get("quantiles")
            quantiles = None if stored is None else np.asarray(stored, dtype=np.float64)
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
        binning._check_quantiles(quantiles, edges)
        binning.edges_, binning.categories_, binning.kind_ = edges, categories, str(data["kind"])
        binning.quantiles_ = quantiles
        binning.fingerprint_ = _fingerprint(binning._state())
        return binning

    def __repr__(self) -> str:
        if not hasattr(self, "fingerprint_"):
            return f"Binning(kind={self.kind!r}, bins={self.bins}, unfitted)"
        return f"Binning({self.kind_}, {self.n_bins} bins, fingerprint {self.fingerprint_})"

    def _state(self) -> dict[str, Any]:
        state = {
            "kind": self.kind_,
            "bins": self.bins,
            "max_categories": self.max_categories,
            "sketch_k": self.sketch_k,
            "edges": self.edges_.tolist(),
            "categories": list(self.categories_),
        }
        # Left out when absent, so a binning stored before they were kept keeps its fingerprint
        # (and its stored profiles stay comparable with new ones).
        if self.quantiles_ is not None:
            state["quantiles"] = self.quantiles_.tolist()
        return state

    def _check_quantiles(self, quantiles: FloatArray | None, edges: FloatArray) -> None:
        if quantiles is None:
            return
        valid = (
            quantiles.shape == (self.bins + 1,)
            and bool(np.all(np.isfinite(quantiles)) and np.all(np.diff(quantiles) >= 0))
            and np.array_equal(_edges_from_quantiles(quantiles), edges)
        )
        if not valid:
            raise InvalidInputError(
                f"binning dict holds quantiles {quantiles.tolist()[:5]}... that are not "
                f"{self.bins + 1} non-decreasing finite numbers giving its edges; pass what "
                "Binning.to_dict returned"
            )

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

    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless this binning is fitted (or rebuilt from a dict)."""
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
    table = to_arrow_table(reference, "the reference frame")
    if columns is None:
        columns = [
            field.name
            for field in table.schema
            if field.name in categorical or _kind_of(field.type, field.name, strict=False)
        ]
    check_columns_present(table, columns)

    def fit(name: str) -> Binning:
        kind = "categorical" if name in categorical else None
        binning = Binning(kind, bins=bins, max_categories=max_categories)
        try:
            return binning.fit(table.column(name))
        except InvalidInputError as error:  # the message says "the reference column"; name it
            raise InvalidInputError(f"column {name!r}: {error}") from None

    names = list(columns)
    # A numeric column's fit is a sort, which releases the GIL: large frames fit on threads.
    threads = COLUMN_THREADS if table.num_rows * len(names) >= PARALLEL_VALUES else 1
    return dict(zip(names, map_on_threads(fit, names, threads=threads), strict=True))


def _edges_from_quantiles(quantiles: FloatArray) -> FloatArray:
    """The distinct quantiles, and one edge just below the least, so that the first bin (open
    below) holds only values under the reference minimum and the next one that minimum alone."""
    below = np.nextafter(quantiles[0], -np.inf)
    extra = [below] if np.isfinite(below) else []
    return np.unique(np.concatenate([extra, quantiles]))


def _fingerprint(state: Mapping[str, Any]) -> str:
    text = json.dumps(state, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def as_chunked(values: object, what: str) -> pa.ChunkedArray:
    """Values (a pandas Series, numpy array, Arrow array or list) as one typed Arrow column;
    ``what`` names them in the error when they mix types."""
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


def float_values(array: pa.ChunkedArray, what: str) -> FloatArray:
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


def category_codes(
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


def check_columns_present(table: pa.Table, columns: Iterable[str]) -> None:
    """Refuse a frame that lacks any of ``columns``, naming the missing ones."""
    missing = sorted(set(columns) - set(table.column_names))
    if missing:
        raise InvalidInputError(
            f"columns {missing} are not in the frame (it has {table.column_names[:20]}); "
            "profile only columns the frame holds"
        )
