"""The settings of a drift comparison: methods, practical floors, alpha, correction, resamples.

Exact mode (``steward.data.drift.compare``) and profile mode
(``steward.data.profiles.compare_profiles``) take the same settings and resolve them here, so both
check them with the same messages: :func:`check_settings` (alpha, correction, bins),
:func:`resolve_methods` (the methods of each column), :func:`resolve_floors` (the floor of each
test) and :func:`resample_count` (the draws of a resampled null).

Example::

    >>> resolve_methods({"amount": "numeric", "plan": "categorical"}, ["ks", "chi_square"])
    ({'amount': ('ks',), 'plan': ('chi_square',)}, False)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from steward.data.drift.classifier import ALL_COLUMNS
from steward.data.drift.stats import CATEGORICAL_METHODS, CORRECTIONS, NUMERIC_METHODS
from steward.errors import InvalidInputError

__all__ = [
    "CHI_SQUARE",
    "DEFAULT_FLOORS",
    "DOMAIN_CLASSIFIER",
    "HELLINGER",
    "JENSEN_SHANNON",
    "KS",
    "PSI",
    "WASSERSTEIN",
    "check_settings",
    "resample_count",
    "resolve_floors",
    "resolve_methods",
    "with_constant_columns",
]

KS = "ks"
PSI = "psi"
JENSEN_SHANNON = "jensen_shannon"
WASSERSTEIN = "wasserstein"
HELLINGER = "hellinger"
CHI_SQUARE = "chi_square"
DOMAIN_CLASSIFIER = "domain_classifier"

_ALL_METHODS: tuple[str, ...] = (*NUMERIC_METHODS, CHI_SQUARE, DOMAIN_CLASSIFIER)

#: The practical floor per method: a significant change alarms only when its statistic exceeds it.
#: For a normal column, each numeric floor matches a mean shift of about: KS 0.25 std, PSI 0.32 std,
#: Jensen–Shannon 0.24 std, Wasserstein 0.1 std (it is in reference standard deviations),
#: Hellinger 0.29 std. Chi-square's statistic in a report is Cramér's V, whose 0.1 is Cohen's "small".
DEFAULT_FLOORS: Mapping[str, float] = MappingProxyType(
    {
        KS: 0.1,
        PSI: 0.1,
        JENSEN_SHANNON: 0.1,
        WASSERSTEIN: 0.1,
        HELLINGER: 0.1,
        CHI_SQUARE: 0.1,
        DOMAIN_CLASSIFIER: 0.55,
    }
)

_MIN_RESAMPLES = 1_000


def check_settings(alpha: float, correction: str, bins: int) -> None:
    """Refuse an alpha outside (0, 1), an unknown correction or fewer than 2 bins."""
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must be within (0, 1), got {alpha!r}; the usual is 0.05")
    if correction not in CORRECTIONS:
        raise InvalidInputError(
            f"correction={correction!r} is unknown; choose one of {CORRECTIONS}"
        )
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise InvalidInputError(f"bins must be an int >= 2, got {bins!r}; the usual is 10")


def resolve_methods(
    kinds: Mapping[str, str], methods: Sequence[str] | None
) -> tuple[dict[str, tuple[str, ...]], bool]:
    """The methods of each column, in canonical order, and whether to run the domain classifier."""
    if methods is None:
        wanted: set[str] = set(NUMERIC_METHODS) | set(CATEGORICAL_METHODS)
    else:
        wanted = {methods} if isinstance(methods, str) else set(methods)
        unknown = sorted(wanted - set(_ALL_METHODS))
        if unknown:
            raise InvalidInputError(
                f"unknown method(s) {unknown}; choose from {list(_ALL_METHODS)}"
            )
    per_column = {}
    for name, kind in kinds.items():
        applicable = NUMERIC_METHODS if kind == "numeric" else CATEGORICAL_METHODS
        chosen = tuple(method for method in applicable if method in wanted)
        if chosen:
            per_column[name] = chosen
    domain = DOMAIN_CLASSIFIER in wanted and methods is not None
    if not per_column and not domain:
        raise InvalidInputError(
            f"methods={methods} apply to none of the columns {dict(kinds)}; numeric columns take "
            f"{list(NUMERIC_METHODS)}, categorical ones {list(CATEGORICAL_METHODS)}"
        )
    return per_column, domain


def with_constant_columns(
    per_column: Mapping[str, tuple[str, ...]], constant: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """``per_column`` with each column constant in the reference tested by KS alone.

    A constant reference has no standard deviation and no bins to speak of: the share of current
    values off the constant is what changed, and KS measures it. Both modes apply this rule here.

    >>> with_constant_columns({"a": ("ks", "psi"), "b": ("ks", "psi")}, ["b"])
    {'a': ('ks', 'psi'), 'b': ('ks',)}
    """
    constant = set(constant)
    return {name: ("ks",) if name in constant else chosen for name, chosen in per_column.items()}


def _floor_value(value: object, where: str) -> float:
    try:
        floor = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        floor = math.nan
    if not (math.isfinite(floor) and floor >= 0):
        raise InvalidInputError(
            f"the floor for {where} must be a finite number >= 0, got {value!r}"
        )
    return floor


def resolve_floors(
    floors: Mapping[str, float | Mapping[str, float]] | None,
    methods: Mapping[str, Sequence[str]],
    domain: bool,
) -> dict[tuple[str, str], float]:
    """The floor of every (column, method): the user's per-column value, else per-method, else default.

    ``floors={"psi": 0.2, "income": {"ks": 0.05}}`` sets PSI's floor for every column and KS's for
    ``income`` only.
    """
    resolved = {
        (name, method): DEFAULT_FLOORS[method] for name in methods for method in methods[name]
    }
    if domain:
        resolved[(ALL_COLUMNS, DOMAIN_CLASSIFIER)] = DEFAULT_FLOORS[DOMAIN_CLASSIFIER]
    items = dict(floors or {})
    for method, value in items.items():
        if isinstance(value, Mapping):
            continue
        if method not in _ALL_METHODS:
            raise InvalidInputError(
                f"floors names {method!r}, which is neither a method {list(_ALL_METHODS)} nor "
                "(with a dict value) a compared column"
            )
        for key in resolved:
            if key[1] == method:
                resolved[key] = _floor_value(value, f"method {method!r}")
    for column, by_method in items.items():
        if not isinstance(by_method, Mapping):
            continue
        for method, value in by_method.items():
            if (column, method) not in resolved:
                raise InvalidInputError(
                    f"floors sets ({column!r}, {method!r}), but that column is not compared with "
                    f"that method; compared: {sorted(resolved)}"
                )
            resolved[(column, method)] = _floor_value(value, f"({column!r}, {method!r})")
    return resolved


def resample_count(n_resamples: int | None, n_tests: int, alpha: float) -> int:
    """The draws of each resampled null: ``n_resamples``, or by default enough for ``n_tests``
    tests at level ``alpha`` (at least 1000)."""
    if n_resamples is None:
        # Enough draws that one test alone can clear a Bonferroni bar (and BH's lowest): the
        # smallest resampled p-value, 1 / (B + 1), is then below alpha / m.
        return max(_MIN_RESAMPLES, math.ceil(n_tests / alpha))
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise InvalidInputError(
            f"n_resamples must be an int >= 1, got {n_resamples!r}; leave it None for the default"
        )
    return n_resamples
