"""The fake LLM's knobs: one table declares each knob once (name, default, allowed values, help).

The table feeds the constructor, ``configure()``, the ``/_fake/config`` endpoint and the command
line, so a knob is validated the same way wherever it is set.

>>> knobs = Knobs().updated({"verbosity": 3, "judge": "random"})
>>> knobs.verbosity, knobs.judge, knobs.seed
(3.0, 'random', 0)
>>> Knobs().updated({"refusal_rate": 1.5})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
steward.testing.knobs.KnobError: fake LLM knob 'refusal_rate' must be a number in [0, 1], got 1.5; ...
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from steward.errors import InvalidInputError

__all__ = ["JUDGE_MODES", "KNOBS", "KnobError", "KnobSpec", "Knobs", "check_knob"]

#: How the fake answers a grading request: the same verdict every time, or a seeded coin flip.
JUDGE_MODES = ("consistent", "random")


class KnobError(InvalidInputError):
    """A knob was unknown or given a value outside its allowed range; ``knob`` names it."""

    def __init__(self, message: str, knob: str) -> None:
        super().__init__(message)
        self.knob = knob


@dataclass(frozen=True)
class KnobSpec:
    """One knob: its name, what values it allows (in words), what it does, and its checker."""

    name: str
    allowed: str
    help: str
    check: Callable[[Any], bool]
    convert: Callable[[Any], Any]
    example: str


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _is_int(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()


def _number_in(low: float, high: float, *, open_low: bool = False) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not _is_number(value):
            return False
        above = value > low if open_low else value >= low
        return bool(above and value <= high)

    return check


def _int_in(low: int, high: int) -> Callable[[Any], bool]:
    return lambda value: _is_int(value) and low <= value <= high


def _rate(name: str, help: str) -> KnobSpec:
    return KnobSpec(name, "a number in [0, 1]", help, _number_in(0, 1), float, "0.1")


KNOBS: tuple[KnobSpec, ...] = (
    KnobSpec(
        "seed",
        "an integer in [0, 2**63)",
        "Seeds every answer: the same seed and request give the same answer.",
        _int_in(0, 2**63 - 1),
        int,
        "0",
    ),
    KnobSpec(
        "verbosity",
        "a number in (0, 100]",
        "Multiplies the answer's length (1 gives 20 to 40 words).",
        _number_in(0, 100, open_low=True),
        float,
        "1",
    ),
    _rate("refusal_rate", "Share of requests refused, chosen by a hash of the request."),
    KnobSpec(
        "latency_ms",
        "a number in [0, 600000]",
        "Milliseconds to wait before answering.",
        _number_in(0, 600_000),
        float,
        "50",
    ),
    _rate("error_rate", "Share of requests answered with a 500 or 429 error."),
    KnobSpec(
        "tokens_per_word",
        "a number in (0, 100]",
        "Tokens counted per whitespace-separated word, a total rounded up (default 4/3).",
        _number_in(0, 100, open_low=True),
        float,
        "1.3333",
    ),
    _rate("cached_ratio", "Share of prompt tokens reported as read from the prompt cache."),
    KnobSpec(
        "reasoning_tokens",
        "an integer in [0, 1000000]",
        "Reasoning tokens added to every completion's count.",
        _int_in(0, 1_000_000),
        int,
        "0",
    ),
    KnobSpec(
        "judge",
        " or ".join(repr(mode) for mode in JUDGE_MODES),
        "Grading requests: 'consistent' (rubric words found) or 'random' (a seeded coin).",
        lambda value: value in JUDGE_MODES,
        str,
        "consistent",
    ),
    KnobSpec(
        "json_output",
        "true or false",
        "Answer valid JSON when the request asks for a JSON response format.",
        lambda value: isinstance(value, bool),
        bool,
        "true",
    ),
    _rate("json_break_rate", "Share of JSON answers sent broken (not parseable)."),
)

_SPECS = {spec.name: spec for spec in KNOBS}


@dataclass(frozen=True)
class Knobs:
    """The fake's behaviour; every field is a knob of ``KNOBS``. Build changed copies with
    ``updated``, which validates.

    >>> Knobs().tokens_per_word == 4 / 3
    True
    """

    seed: int = 0
    verbosity: float = 1.0
    refusal_rate: float = 0.0
    latency_ms: float = 0.0
    error_rate: float = 0.0
    tokens_per_word: float = 4 / 3
    cached_ratio: float = 0.0
    reasoning_tokens: int = 0
    judge: str = "consistent"
    json_output: bool = True
    json_break_rate: float = 0.0

    def updated(self, changes: Mapping[str, Any]) -> Knobs:
        """A copy with ``changes`` applied; raises ``KnobError`` naming the first bad knob."""
        checked = {name: check_knob(name, value) for name, value in changes.items()}
        return dataclasses.replace(self, **checked)

    def to_dict(self) -> dict[str, Any]:
        """The knobs by name, as ``GET /_fake/config`` answers them."""
        return dataclasses.asdict(self)


def check_knob(name: str, value: Any) -> Any:
    """``value`` converted to the knob's type, or ``KnobError`` saying what is allowed."""
    spec = _SPECS.get(name)
    if spec is None:
        known = ", ".join(sorted(_SPECS))
        raise KnobError(f"unknown fake LLM knob {name!r}; known knobs: {known}", name)
    if not spec.check(value):
        raise KnobError(
            f"fake LLM knob {name!r} must be {spec.allowed}, got {value!r}; "
            f"pass e.g. {name}={spec.example}",
            name,
        )
    return spec.convert(value)
