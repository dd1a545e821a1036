"""Grading requests: the judge prompt Steward's eval engine sends, and the fake's verdicts on it.

A chat request is a grading request when its system message is exactly ``JUDGE_SYSTEM_PROMPT`` and
its user message is ``grading_message(output, rubric)``. The consistent verdict passes when the
output holds at least one rubric term (a word of four letters or more that is not a stop word) and
scores the share of rubric terms it holds.

>>> message = grading_message("Refunds take 5 days.", "Explains the refund timeline")
>>> parse_grading_request([{"role": "system", "content": JUDGE_SYSTEM_PROMPT},
...                        {"role": "user", "content": message}])
('Refunds take 5 days.', 'Explains the refund timeline')
>>> verdict = grade_consistently("The refund arrives in five days.", "Explains the refund timeline")
>>> verdict["pass"], round(verdict["score"], 3)
(True, 0.333)
"""

from __future__ import annotations

import random
import re
from typing import Any

from steward.testing.answers import content_words

__all__ = [
    "JUDGE_SYSTEM_PROMPT",
    "grade_consistently",
    "grade_randomly",
    "grading_message",
    "parse_grading_request",
    "rubric_terms",
]

#: The system message of a grading request; the eval engine sends exactly this text.
JUDGE_SYSTEM_PROMPT = (
    "You grade an output against a rubric. Answer with JSON only: "
    '{"reason": string, "pass": boolean, "score": number between 0 and 1}.'
)

_GRADING = re.compile(r"\A<Output>\n(.*)\n</Output>\n<Rubric>\n(.*)\n</Rubric>\Z", re.DOTALL)


def grading_message(output: str, rubric: str) -> str:
    """The user message of a grading request for ``output`` against ``rubric``."""
    return f"<Output>\n{output}\n</Output>\n<Rubric>\n{rubric}\n</Rubric>"


def parse_grading_request(messages: list[dict[str, str]]) -> tuple[str, str] | None:
    """``(output, rubric)`` when ``messages`` are a grading request, else None."""
    system = [m["content"] for m in messages if m["role"] in ("system", "developer")]
    users = [m["content"] for m in messages if m["role"] == "user"]
    if system != [JUDGE_SYSTEM_PROMPT] or not users:
        return None
    match = _GRADING.match(users[-1])
    return (match.group(1), match.group(2)) if match else None


def rubric_terms(rubric: str) -> list[str]:
    """The words a consistent judge looks for: 4+ letters, not stop words, lower-cased, distinct.

    >>> rubric_terms("Mentions the refund policy and the refund deadline")
    ['mentions', 'refund', 'policy', 'deadline']
    """
    return list(dict.fromkeys(content_words(rubric, minimum_letters=4)))


def grade_consistently(output: str, rubric: str) -> dict[str, Any]:
    """The deterministic verdict: ``{"reason", "pass", "score"}`` from the rubric terms found."""
    terms = rubric_terms(rubric)
    if not terms:
        return {
            "reason": "The rubric has no words of four letters or more to look for.",
            "pass": False,
            "score": 0.0,
        }
    present = set(content_words(output))
    found = [term for term in terms if term in present]
    if found:
        reason = (
            f"The output mentions {len(found)} of {len(terms)} rubric terms: {', '.join(found)}."
        )
    else:
        reason = f"The output mentions none of the rubric terms: {', '.join(terms)}."
    return {"reason": reason, "pass": bool(found), "score": len(found) / len(terms)}


def grade_randomly(generator: random.Random) -> dict[str, Any]:
    """A coin flip from ``generator`` (advanced by each call); the score agrees with the verdict.

    >>> verdicts = [grade_randomly(random.Random(0))["pass"] for _ in range(2)]
    >>> verdicts[0] == verdicts[1]
    True
    """
    passed = generator.random() < 0.5
    spread = round(generator.random() / 2, 3)
    score = 0.5 + spread if passed else spread
    outcome = "pass" if passed else "fail"
    return {
        "reason": f"A coin flip (random judge mode) gave {outcome}.",
        "pass": passed,
        "score": score,
    }
