"""Column profiles: the mergeable summary of one column's rows, and how profiles merge.

A :class:`ColumnProfile` holds counts, bin counts on its :class:`Binning`, moments, extremes and
sketches; :func:`merge_profiles` combines profiles of the same column and binning exactly (counts,
bins, extremes), by Chan et al.'s formula (moments) or as the sketch library defines (sketches).
:func:`profile_groups` profiles many groups of rows of one column at once, in vectorized passes:
what ``ColumnProfile.from_values``, ``DatasetProfile.from_frame`` and
``steward.data.profiles.store.profile_frame`` all run.

Example::

    >>> binning = Binning().fit([0.0, 1.0, 2.0])
    >>> first = ColumnProfile.from_values([0.0, 1.0], binning)
    >>> merge_profiles([first, ColumnProfile.from_values([2.0], binning)]).count
    3
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import datasketches
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from steward._util.threads import COLUMN_THREADS, PARALLEL_VALUES, map_on_threads
from steward.data.profiles.binning import Binning, as_chunked
from steward.data.profiles.counting import (
    categorical_fields,
    new_sketch,
    numeric_fields,
    read_numbers,
)
from steward.errors import InvalidInputError

__all__ = [
    "SKETCH_FIELDS",
    "SKETCH_TYPES",
    "ColumnProfile",
    "check_same_binning",
    "merge_profiles",
    "profile_columns",
    "profile_groups",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_FORMAT: Final = 1


@dataclass(frozen=True, eq=False, repr=False)
class ColumnProfile:
    """Mergeable summary of one column's rows: counts, bin counts, moments, extremes and sketches.

    ``count`` counts every row; ``null_count`` the missing ones (null or NaN); ``violation_count``
    the contract violations the caller reported. Numeric profiles count infinite values in
    ``infinite_count`` and summarize the finite ones: ``bin_counts`` on the binning's bins,
    ``finite_count``, ``finite_mean`` and ``finite_m2`` (the sum of squared deviations),
    ``minimum``, ``maximum``, a KLL ``sketch`` and ``bin_sums``: per bin, the sum of its values
    each measured from the bin's anchor (``Binning.anchors``: its right edge; for the last bin, open
    above, its left edge). So a bin's mean is ``anchor + bin_sums / bin_counts``, and a bin sums to
    exactly 0 when every value in it sits on its right edge, which profile-mode KS and Wasserstein
    use. Profiles stored before the sums were kept have ``bin_sums`` None. Categorical profiles
    hold ``bin_counts`` per known category, ``unseen_count`` and a frequent-items
    ``unseen_sketch`` of unseen values.

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
    bin_sums: FloatArray | None = None

    @classmethod
    def from_values(
        cls, values: object, binning: Binning, *, violation_count: int = 0
    ) -> ColumnProfile:
        """Profile one batch of values; ``violation_count`` is the batch's contract violations.

        >>> binning = Binning().fit([1.0, 2.0, 3.0])
        >>> ColumnProfile.from_values([1.0, None, float("inf")], binning).infinite_count
        1
        """
        array = as_chunked(values, "the values")
        groups = np.zeros(len(array), dtype=np.int64)
        violations = np.zeros(len(array), dtype=np.float64)
        if len(array):
            violations[0] = violation_count
        elif violation_count:
            raise InvalidInputError(
                f"violation_count={violation_count} for an empty batch; pass 0 or the batch's rows"
            )
        return profile_groups(array, binning, groups, 1, violations, "the column")[0]

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
    def bin_means(self) -> FloatArray | None:
        """Mean of the values in each numeric bin (NaN for an empty bin); None without bin sums.

        >>> binning = Binning(bins=2).fit([0.0, 1.0, 2.0])
        >>> ColumnProfile.from_values([0.5, 1.5, 2.0, 7.0], binning).bin_means.tolist()[2:]
        [0.5, 1.75, 7.0]
        """
        self.require_kind("numeric", "bin_means")
        if self.bin_sums is None:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.binning.anchors + self.bin_sums / self.bin_counts
        return np.asarray(np.where(self.bin_counts > 0, means, np.nan), dtype=np.float64)

    @property
    def category_counts(self) -> dict[str, int]:
        """Count per known category, in the binning's order (unseen values are not in it)."""
        self.require_kind("categorical", "category_counts")
        return dict(zip(self.binning.categories_, self.bin_counts.tolist(), strict=True))

    @property
    def quantile_rank_error(self) -> float:
        """The KLL sketch's normalized rank error for one quantile (99% confidence)."""
        self.require_kind("numeric", "quantile_rank_error")
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
        self.require_kind("numeric", "quantile")
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
        >>> edges.tolist()[2:], counts.tolist()
        ([0.0, 1.0, 2.0, inf], [0, 0, 1, 1, 1])
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
        self.require_kind("categorical", "unseen_values")
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
            "bin_sums": None if self.bin_sums is None else self.bin_sums.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], binning: Binning | None = None) -> ColumnProfile:
        """Rebuild a profile from :meth:`to_dict` output; ``binning`` replaces a left-out one."""
        try:
            if data["format"] != _FORMAT:
                raise ValueError(f"format {data['format']!r} is not {_FORMAT}")
            binning = binning or Binning.from_dict(data["binning"])
            field = SKETCH_FIELDS[binning.kind_]
            sketch = SKETCH_TYPES[binning.kind_].deserialize(_decode_sketch(data[field]))
            sums = data.get("bin_sums")  # absent from profiles stored before the sums were kept
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
                bin_sums=None if sums is None else np.asarray(sums, dtype=np.float64),
                **{field: sketch},
            )
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise InvalidInputError(
                f"profile dict is malformed ({error!r}); pass what ColumnProfile.to_dict returned"
            ) from error
        sums_shape = (
            profile.bin_counts.shape if profile.bin_sums is None else profile.bin_sums.shape
        )
        if profile.bin_counts.shape != (binning.n_bins,) or sums_shape != (binning.n_bins,):
            raise InvalidInputError(
                f"profile dict holds {profile.bin_counts.size} bin counts and {sums_shape} bin sums "
                f"for a binning of {binning.n_bins} bins; pass what ColumnProfile.to_dict returned"
            )
        return profile

    def __repr__(self) -> str:
        return (
            f"ColumnProfile({self.kind}, count={self.count}, nulls={self.null_count}, "
            f"violations={self.violation_count}, binning {self.binning.fingerprint_})"
        )

    def require_kind(self, kind: str, what: str) -> None:
        """Refuse to run ``what`` unless this profile is of ``kind`` ("numeric" or "categorical")."""
        if self.kind != kind:
            raise InvalidInputError(
                f"{what} needs a {kind} profile, but this one is {self.kind}; use it on a "
                f"{kind} column"
            )


#: The field of a profile that holds its sketch, per binning kind.
SKETCH_FIELDS: Final = {"numeric": "sketch", "categorical": "unseen_sketch"}
#: The datasketches class of that sketch, per binning kind (its ``deserialize`` reads it back).
SKETCH_TYPES: Final = {
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

    Counts, bin counts, minima and maxima combine exactly; bin sums add (None when any part has
    none); the mean and the sum of squared deviations combine by Chan et al.'s parallel formula;
    the sketches merge (KLL stays within its rank error). The result does not depend on the order
    of the profiles, up to rounding.

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
        check_same_binning(first, other, "merge")
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
        bin_sums=_merged_sums([part.bin_sums for part in parts]),
    )


def _merged_sums(sums: Sequence[FloatArray | None]) -> FloatArray | None:
    present = [part for part in sums if part is not None]
    if len(present) < len(sums):
        return None
    return np.asarray(np.sum(present, axis=0, dtype=np.float64))


def _merged_sketches(sketches: Sequence[Any], binning: Binning) -> Any:
    if sketches[0] is None:
        return None
    merged = new_sketch(binning)
    for sketch in sketches:
        merged.merge(sketch)
    return merged


def check_same_binning(first: ColumnProfile, other: ColumnProfile, action: str) -> None:
    """Refuse to ``action`` ("merge", "compare") two profiles of different binnings, saying
    where the binnings differ."""
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


def profile_groups(
    array: pa.ChunkedArray,
    binning: Binning,
    groups: IntArray,
    n_groups: int,
    violations: FloatArray,
    what: str,
    order: IntArray | None = None,
    counts: IntArray | None = None,
) -> list[ColumnProfile]:
    """One profile per group. Row ``order[i]`` of ``array`` (row ``i`` when ``order`` is None)
    belongs to group ``groups[i]``, and ``groups`` is sorted ascending, so each group's rows form
    one contiguous run.

    ``violations`` holds each row's contract violations (summed per group); ``what`` names the
    column in errors; ``counts``, each group's rows, saves counting them again for every column.
    The passes over the rows are in ``steward.data.profiles.counting``."""
    binning.check_fitted()
    counts = np.bincount(groups, minlength=n_groups) if counts is None else counts
    broken = [0] * n_groups
    if violations.any():
        broken = (
            np.rint(np.bincount(groups, weights=violations, minlength=n_groups))
            .astype(np.int64)
            .tolist()
        )
    if binning.kind_ == "numeric":
        values = read_numbers(array, what, order)
        fields = numeric_fields(values, binning, counts)
    else:
        fields = categorical_fields(array, order, binning, groups, n_groups)
    return [
        ColumnProfile(
            binning=binning,
            count=int(counts[group]),
            violation_count=int(broken[group]),
            **{name: values[group] for name, values in fields.items()},
        )
        for group in range(n_groups)
    ]


def profile_columns(
    table: pa.Table,
    binnings: Mapping[str, Binning],
    groups: IntArray,
    n_groups: int,
    violations: Callable[[str], FloatArray],
    order: IntArray | None = None,
) -> dict[str, list[ColumnProfile]]:
    """:func:`profile_groups` for each binned column of ``table``, in the binnings' order.

    ``violations(name)`` gives the column's per-row violations (in ``order``, as ``groups``).
    Columns are profiled on up to ``COLUMN_THREADS`` threads when the frame is large enough for it to
    pay: each column's passes are numpy and Arrow calls that release the GIL, and the results do
    not depend on which thread profiled a column."""
    counts = np.bincount(groups, minlength=n_groups)

    def profile(name: str) -> list[ColumnProfile]:
        return profile_groups(
            table.column(name),
            binnings[name],
            groups,
            n_groups,
            violations(name),
            f"column {name!r}",
            order,
            counts,
        )

    names = list(binnings)
    threads = COLUMN_THREADS if table.num_rows * len(names) >= PARALLEL_VALUES else 1
    return dict(zip(names, map_on_threads(profile, names, threads=threads), strict=True))
