"""Judged assertions (``llm-rubric``, ``similar``), asked of a judge model several times.

A judge is a model, and a model asked twice may answer twice differently. Each judged assertion is
therefore put to the judge ``repeats`` times (3 by default); the reported result is the majority
(a tie fails), and ``agreement`` is the share of repeats that agree with it. Over a run,
:func:`judge_consistency` says how often the judge was unanimous and gives Fleiss' kappa for its
pass/fail calls; a run whose judge was unanimous on fewer than ``UNANIMITY_FLOOR`` (90 %) of its
assertions is flagged ``inconsistent``: its judged results are closer to coin flips than to
measurements, and a gate should not lean on them.

Without a judge provider, judged assertions are skipped with the reason "no judge provider
configured", never passed.

>>> parse_rubric_answer('```json\\n{"reason": "polite", "pass": true, "score": 0.9}\\n```')
(True, 0.9, 'polite')
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from steward.errors import InvalidInputError, StewardError
from steward.llm.evals.assertions import AssertionResult, CheckContext, render_value, skipped_result
from steward.llm.evals.cases import Assertion, validate_assertion
from steward.llm.providers import ChatRequest, make_provider

__all__ = [
    "DEFAULT_REPEATS",
    "DEFAULT_SIMILARITY_THRESHOLD",
    "NO_JUDGE_REASON",
    "RUBRIC_SYSTEM_PROMPT",
    "RUBRIC_USER_TEMPLATE",
    "UNANIMITY_FLOOR",
    "JudgeConsistency",
    "JudgePool",
    "check_judged",
    "cosine_similarity",
    "fleiss_kappa",
    "judge_consistency",
    "parse_rubric_answer",
    "rubric_request",
]

#: The system message of every rubric call. The fake judge server in ``steward.testing`` recognises
#: exactly this shape, so keep it verbatim.
RUBRIC_SYSTEM_PROMPT: Final = (
    "You grade an output against a rubric. Answer with JSON only: "
    '{"reason": string, "pass": boolean, "score": number between 0 and 1}.'
)
#: The user message of every rubric call (``str.format`` with ``output`` and ``rubric``).
RUBRIC_USER_TEMPLATE: Final = "<Output>\n{output}\n</Output>\n<Rubric>\n{rubric}\n</Rubric>"
#: How many times a judged assertion is put to the judge.
DEFAULT_REPEATS: Final = 3
#: promptfoo's default cosine similarity for ``similar``.
DEFAULT_SIMILARITY_THRESHOLD: Final = 0.75
#: Below this share of unanimous judged assertions, a run's judge is flagged inconsistent. With 3
#: repeats, a judge that flips a fair coin is unanimous 25 % of the time and a perfectly stable one
#: 100 %; 90 % tolerates an occasional wobble but not a judge that disagrees with itself routinely.
UNANIMITY_FLOOR: Final = 0.9
NO_JUDGE_REASON: Final = "no judge provider configured"
_FENCE: Final = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class _Repeat:
    passed: bool
    score: float
    reason: str


def rubric_request(output: str, rubric: str) -> ChatRequest:
    """The chat request that asks a judge to grade ``output`` against ``rubric``."""
    return ChatRequest(
        messages=[
            {"role": "system", "content": RUBRIC_SYSTEM_PROMPT},
            {"role": "user", "content": RUBRIC_USER_TEMPLATE.format(output=output, rubric=rubric)},
        ]
    )


def parse_rubric_answer(text: str) -> tuple[bool, float, str]:
    """``(pass, score, reason)`` from a judge's answer: the first JSON object in it, in a code fence
    or among other text. ``pass`` may be a boolean or yes/no/pass/fail text; without ``pass``, a
    ``score`` of 0.5 or more passes. Raises ``ValueError`` saying what is wrong otherwise.
    """
    answer = _first_json_object(text)
    if answer is None:
        raise ValueError(f"no JSON object in the judge's answer: {text[:200]!r}")
    score = answer.get("score")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, int | float | str):
            raise ValueError(f"'score' is not a number: {score!r}")
        try:
            score = float(score)
        except ValueError:
            raise ValueError(f"'score' is not a number: {score!r}") from None
        if not math.isfinite(score):
            raise ValueError(f"'score' is not a finite number: {score!r}")
    verdict = _verdict(answer.get("pass"), score)
    reason = str(answer.get("reason") or "")
    return verdict, (score if score is not None else float(verdict)), reason


def _verdict(value: Any, score: float | None) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "y", "pass", "passed"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "n", "fail", "failed"):
        return False
    if value is None and score is not None:
        return score >= 0.5
    raise ValueError(f"'pass' is neither true nor false: {value!r}")


def _first_json_object(text: str) -> dict[str, Any] | None:
    candidates = [*_FENCE.findall(text), text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for start in (index for index, char in enumerate(candidate) if char == "{"):
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def cosine_similarity(left: Sequence[float], right: Sequence[float]) -> float:
    """The cosine of the angle between two vectors (0 when either is all zeros).

    >>> cosine_similarity([1.0, 0.0], [1.0, 1.0])
    0.7071067811865475
    """
    if len(left) != len(right):
        raise ValueError(f"embeddings of different lengths ({len(left)} and {len(right)})")
    norm = math.sqrt(sum(x * x for x in left)) * math.sqrt(sum(y * y for y in right))
    return sum(x * y for x, y in zip(left, right, strict=True)) / norm if norm else 0.0


class JudgePool:
    """The run's judge, plus the judges assertions name in ``provider:``, each built once.

    ``named`` maps a provider spec (as written in the assertion) to a ready provider, so tests and
    callers can supply their own; any other spec goes through ``make_provider``. ``unavailable`` is
    the skip reason when there is no default judge.
    """

    def __init__(
        self,
        default: Any = None,
        named: Mapping[str, Any] | None = None,
        *,
        unavailable: str = NO_JUDGE_REASON,
    ) -> None:
        self.default = default
        self.unavailable = unavailable
        self._built: dict[str, Any] = dict(named or {})
        self._failed: dict[str, str] = {}

    def judge_for(self, assertion: Assertion) -> tuple[Any, str | None]:
        """``(judge, None)``, or ``(None, why it is skipped)``."""
        if assertion.provider is None:
            return (self.default, None) if self.default is not None else (None, self.unavailable)
        spec = assertion.provider
        key = spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True, default=str)
        if key not in self._built and key not in self._failed:
            try:
                self._built[key] = make_provider(spec)
            except StewardError as error:
                self._failed[key] = f"judge provider {key} cannot be used: {error}"
        if key in self._failed:
            return None, self._failed[key]
        return self._built[key], None


def check_judged(
    assertion: Assertion,
    output: str,
    context: CheckContext,
    judges: JudgePool,
    *,
    repeats: int = DEFAULT_REPEATS,
) -> AssertionResult:
    """Put a judged assertion to its judge ``repeats`` times and report the majority."""
    if assertion.unsupported is not None:
        return skipped_result(assertion, assertion.unsupported)
    judge, why_not = judges.judge_for(assertion)
    if judge is None:
        return skipped_result(assertion, why_not or NO_JUDGE_REASON)
    try:
        assertion = validate_assertion(assertion, base_dir=context.base_dir)
        value = render_value(assertion.value, context.vars)
    except InvalidInputError as error:
        return AssertionResult(
            assertion.type,
            False,
            0.0,
            f"failed: {error}",
            assertion.weight,
            metric=assertion.metric,
        )
    if assertion.base_type == "llm-rubric":
        attempts = [_rubric_repeat(judge, assertion, output, str(value)) for _ in range(repeats)]
    elif not callable(getattr(judge, "embed", None)):
        return skipped_result(assertion, f"judge {judge.id!r} has no embed() for 'similar'")
    else:
        expected = [value] if isinstance(value, str) else list(value)
        attempts = [_similar_repeat(judge, assertion, output, expected) for _ in range(repeats)]
    return _majority(assertion, attempts)


def _rubric_repeat(judge: Any, assertion: Assertion, output: str, rubric: str) -> _Repeat:
    try:
        answer = judge.complete(rubric_request(output, rubric)).text
    except Exception as error:  # a judge is an outside service: its failure fails the repeat
        return _Repeat(False, 0.0, f"the judge did not answer: {_describe(error)}")
    try:
        verdict, score, reason = parse_rubric_answer(answer)
    except ValueError as error:
        return _Repeat(False, 0.0, f"unparseable judge answer: {error}")
    if assertion.threshold is not None and score < assertion.threshold:
        verdict = False
        reason = f"score {score:g} below threshold {assertion.threshold:g}: {reason}"
    if assertion.inverse:
        verdict, score = not verdict, min(1.0, max(0.0, 1.0 - score))
    return _Repeat(verdict, score, reason or ("graded a pass" if verdict else "graded a fail"))


def _similar_repeat(judge: Any, assertion: Assertion, output: str, expected: list[str]) -> _Repeat:
    threshold = (
        assertion.threshold if assertion.threshold is not None else DEFAULT_SIMILARITY_THRESHOLD
    )
    try:
        vectors = judge.embed([*expected, output])
        similarities = [cosine_similarity(vector, vectors[-1]) for vector in vectors[:-1]]
    except Exception as error:  # a judge is an outside service: its failure fails the repeat
        return _Repeat(False, 0.0, f"the judge gave no usable embeddings: {_describe(error)}")
    if len(similarities) != len(expected):
        return _Repeat(
            False, 0.0, f"the judge gave {len(vectors)} embeddings for {len(expected) + 1} texts"
        )
    best = max(similarities)
    if assertion.inverse:
        passed = best < threshold
        return _Repeat(
            passed,
            1.0 - best,
            f"highest cosine similarity {best:.3f}, must stay below {threshold:g}",
        )
    return _Repeat(best >= threshold, best, f"cosine similarity {best:.3f}, needs {threshold:g}")


def _describe(error: Exception) -> str:
    return str(error) if isinstance(error, StewardError) else f"{type(error).__name__}: {error}"


def _majority(assertion: Assertion, attempts: list[_Repeat]) -> AssertionResult:
    votes = [attempt.passed for attempt in attempts]
    passed = sum(votes) * 2 > len(votes)  # a tie fails: a judge split evenly has not said yes
    agreeing = [attempt for attempt in attempts if attempt.passed == passed]
    agreement = len(agreeing) / len(attempts)
    reason = agreeing[0].reason if agreeing else ""
    verdict = "passed" if passed else "failed"
    return AssertionResult(
        type=assertion.type,
        passed=passed,
        score=sum(attempt.score for attempt in attempts) / len(attempts),
        reason=f"{verdict} ({len(agreeing)}/{len(attempts)} repeats agree): {reason}",
        weight=assertion.weight,
        repeats=votes,
        agreement=agreement,
        metric=assertion.metric,
    )


@dataclass(frozen=True)
class JudgeConsistency:
    """How much a run's judge agreed with itself.

    ``judged`` counts the judged assertions asked at least twice; ``unanimity`` is the share of them
    where every repeat agreed; ``kappa`` is Fleiss' kappa of the pass/fail calls (None when
    undefined: fewer than two repeats, unequal repeat counts, or every call the same);
    ``inconsistent`` is true when unanimity is below :data:`UNANIMITY_FLOOR`.
    """

    judged: int = 0
    unanimity: float | None = None
    kappa: float | None = None
    inconsistent: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data; :meth:`from_dict` reads it back."""
        return {
            "judged": self.judged,
            "unanimity": self.unanimity,
            "kappa": self.kappa,
            "inconsistent": self.inconsistent,
            "unanimity_floor": UNANIMITY_FLOOR,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeConsistency:
        """A summary from :meth:`to_dict` output."""
        return cls(
            judged=int(data.get("judged", 0)),
            unanimity=data.get("unanimity"),
            kappa=data.get("kappa"),
            inconsistent=bool(data.get("inconsistent", False)),
        )


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of a subjects x categories table of rating counts (same raters per row).

    None when it is undefined: no rows, fewer than two ratings per row, unequal row totals, or
    every rating in one category (no disagreement is possible by chance either).

    >>> round(fleiss_kappa([[3, 0], [0, 3], [2, 1]]), 4)
    0.55
    """
    rows = [list(row) for row in table]
    if not rows:
        return None
    raters = sum(rows[0])
    if raters < 2 or any(sum(row) != raters for row in rows):
        return None
    subjects = len(rows)
    per_subject = [(sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in rows]
    observed = sum(per_subject) / subjects
    shares = [sum(row[j] for row in rows) / (subjects * raters) for j in range(len(rows[0]))]
    expected = sum(share * share for share in shares)
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1.0 - expected)


def judge_consistency(results: Iterable[AssertionResult]) -> JudgeConsistency:
    """The consistency summary over every judged assertion result of a run."""
    repeated = [result.repeats for result in results if len(result.repeats) >= 2]
    if not repeated:
        return JudgeConsistency()
    unanimity = sum(len(set(votes)) == 1 for votes in repeated) / len(repeated)
    kappa = fleiss_kappa([[sum(votes), len(votes) - sum(votes)] for votes in repeated])
    return JudgeConsistency(
        judged=len(repeated),
        unanimity=unanimity,
        kappa=kappa,
        inconsistent=unanimity < UNANIMITY_FLOOR,
    )
