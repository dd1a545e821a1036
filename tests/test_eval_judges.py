"""Judged assertions are asked several times; the majority counts and the judge's consistency shows.

The judges here are small Provider classes standing in for a paid model: they answer from a script
or from a seeded random generator, and record what they were asked.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from steward.errors import InvalidInputError
from steward.llm.evals.assertions import AssertionResult, CheckContext
from steward.llm.evals.cases import Assertion, EvalCase, EvalSet
from steward.llm.evals.judges import (
    NO_JUDGE_REASON,
    RUBRIC_SYSTEM_PROMPT,
    RUBRIC_USER_TEMPLATE,
    UNANIMITY_FLOOR,
    JudgeConsistency,
    JudgePool,
    check_judged,
    fleiss_kappa,
    judge_consistency,
    parse_rubric_answer,
    rubric_request,
)
from steward.llm.evals.runner import run_eval
from steward.llm.providers import ChatRequest, Completion, EchoProvider, ProviderError


class ScriptedJudge:
    """Answers each call with the next scripted text (or raises it when it is an exception)."""

    id = "scripted-judge"

    def __init__(self, answers: Sequence[str | Exception]) -> None:
        self._answers: Iterator[str | Exception] = iter(answers)
        self.requests: list[ChatRequest] = []

    def complete(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        answer = next(self._answers)
        if isinstance(answer, Exception):
            raise answer
        return Completion(text=answer, model="judge")


class CoinJudge:
    """A judge that answers at random (seeded): what an unreliable paid judge looks like."""

    id = "coin-judge"

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def complete(self, request: ChatRequest) -> Completion:
        verdict = self._random.random() < 0.5
        return Completion(
            text=json.dumps({"reason": "coin", "pass": verdict, "score": float(verdict)})
        )


class SteadyJudge:
    """Always the same verdict for the same output: passes outputs that mention 'Ada'."""

    id = "steady-judge"

    def complete(self, request: ChatRequest) -> Completion:
        verdict = "Ada" in request.messages[1]["content"]
        return Completion(text=json.dumps({"reason": "steady", "pass": verdict, "score": 1.0}))


class EmbeddingJudge:
    """Embeds texts from a fixed table of vectors."""

    id = "embedding-judge"

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def complete(self, request: ChatRequest) -> Completion:
        raise ProviderError("this judge only embeds")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.vectors[text] for text in texts]


RUBRIC = Assertion("llm-rubric", "The reply is polite")
PASS = '{"reason": "polite", "pass": true, "score": 0.9}'
FAIL = '{"reason": "rude", "pass": false, "score": 0.1}'


def judged(
    assertion: Assertion, judge: object, output: str = "Hello Ada", repeats: int = 3
) -> AssertionResult:
    return check_judged(assertion, output, CheckContext(), JudgePool(judge), repeats=repeats)


def test_the_rubric_call_has_the_exact_shape_the_fake_judge_recognises() -> None:
    assert RUBRIC_SYSTEM_PROMPT == (
        "You grade an output against a rubric. Answer with JSON only: "
        '{"reason": string, "pass": boolean, "score": number between 0 and 1}.'
    )
    assert RUBRIC_USER_TEMPLATE == "<Output>\n{output}\n</Output>\n<Rubric>\n{rubric}\n</Rubric>"
    request = rubric_request("Hi Ada", "Is polite")
    assert request.messages == [
        {"role": "system", "content": RUBRIC_SYSTEM_PROMPT},
        {"role": "user", "content": "<Output>\nHi Ada\n</Output>\n<Rubric>\nIs polite\n</Rubric>"},
    ]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"reason": "ok", "pass": true, "score": 0.8}', (True, 0.8, "ok")),
        ('```json\n{"reason": "fenced", "pass": false, "score": 0}\n```', (False, 0.0, "fenced")),
        (
            'Sure! Here is my grade: {"pass": "yes", "score": "0.7", "reason": "chatty"} Thanks.',
            (True, 0.7, "chatty"),
        ),
        ('{"reason": "score only", "score": 0.3}', (False, 0.3, "score only")),
        ('{"reason": "verdict only", "pass": true}', (True, 1.0, "verdict only")),
        ('{"note": {"nested": 1}, "pass": false, "reason": "outer"}', (False, 0.0, "outer")),
    ],
)
def test_rubric_answers_are_parsed_robustly(answer: str, expected: tuple[bool, float, str]) -> None:
    assert parse_rubric_answer(answer) == expected


@pytest.mark.parametrize(
    "answer", ["I think it passes.", '{"pass": "maybe"}', '{"pass": true, "score": "high"}', "{}"]
)
def test_unparseable_rubric_answers_raise_value_errors(answer: str) -> None:
    with pytest.raises(ValueError):
        parse_rubric_answer(answer)


def test_each_judged_assertion_is_asked_repeats_times_and_the_majority_reported() -> None:
    judge = ScriptedJudge([PASS, FAIL, PASS])
    result = judged(RUBRIC, judge)
    assert len(judge.requests) == 3
    assert all("The reply is polite" in r.messages[1]["content"] for r in judge.requests)
    assert result.repeats == [True, False, True]
    assert result.passed is True
    assert result.agreement == pytest.approx(2 / 3)
    assert result.score == pytest.approx((0.9 + 0.1 + 0.9) / 3)


def test_an_unparseable_answer_is_a_failed_repeat_with_its_reason() -> None:
    result = judged(RUBRIC, ScriptedJudge([PASS, "no idea", "still no idea"]))
    assert result.repeats == [True, False, False]
    assert result.passed is False
    assert "unparseable" in result.reason


def test_a_judge_that_errors_fails_its_repeats() -> None:
    result = judged(RUBRIC, ScriptedJudge([ProviderError("judge down")] * 3))
    assert result.passed is False and "judge down" in result.reason


def test_an_even_split_fails() -> None:
    result = judged(RUBRIC, ScriptedJudge([PASS, FAIL]), repeats=2)
    assert (result.passed, result.agreement) == (False, 0.5)


def test_a_rubric_threshold_needs_the_score_too() -> None:
    strict = Assertion("llm-rubric", "polite", threshold=0.95)
    assert judged(strict, ScriptedJudge([PASS] * 3)).passed is False  # 0.9 < 0.95


def test_not_llm_rubric_inverts_parsed_answers_but_never_unparseable_ones() -> None:
    negated = Assertion("not-llm-rubric", "The reply is rude")
    assert judged(negated, ScriptedJudge([FAIL] * 3)).passed is True
    assert judged(negated, ScriptedJudge([PASS] * 3)).passed is False
    assert judged(negated, ScriptedJudge(["garbage"] * 3)).passed is False


def test_without_a_judge_judged_assertions_are_skipped_never_passed() -> None:
    for assertion in (RUBRIC, Assertion("similar", "Hello")):
        result = check_judged(assertion, "Hello Ada", CheckContext(), JudgePool())
        assert result.passed is None
        assert NO_JUDGE_REASON in result.reason


def test_an_assertion_naming_an_unbuildable_judge_is_skipped_with_why() -> None:
    assertion = Assertion("llm-rubric", "polite", provider="anthropic:claude")
    result = check_judged(assertion, "Hi", CheckContext(), JudgePool(SteadyJudge()))
    assert result.passed is None and "anthropic:claude" in result.reason


def test_an_assertion_may_name_its_own_judge() -> None:
    assertion = Assertion("llm-rubric", "polite", provider="strict")
    pool = JudgePool(ScriptedJudge([]), named={"strict": ScriptedJudge([FAIL] * 3)})
    assert check_judged(assertion, "Hi", CheckContext(), pool).passed is False


def cosine(left: list[float], right: list[float]) -> float:
    a, b = np.array(left), np.array(right)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_similar_passes_at_the_default_cosine_threshold() -> None:
    vectors = {"Hello": [1.0, 0.0], "near": [0.9, 0.3], "far": [0.2, 1.0]}
    judge = EmbeddingJudge(vectors)
    assert (
        cosine(vectors["Hello"], vectors["near"]) >= 0.75 > cosine(vectors["Hello"], vectors["far"])
    )
    near = judged(Assertion("similar", "Hello"), judge, output="near")
    assert near.passed is True
    assert near.score == pytest.approx(cosine(vectors["Hello"], vectors["near"]))
    assert judged(Assertion("similar", "Hello"), judge, output="far").passed is False
    assert judged(Assertion("not-similar", "Hello"), judge, output="far").passed is True
    assert (
        judged(Assertion("similar", "Hello", threshold=0.99), judge, output="near").passed is False
    )


def test_similar_with_several_expected_texts_passes_on_any() -> None:
    judge = EmbeddingJudge({"Hello": [1.0, 0.0], "Goodbye": [0.0, 1.0], "bye": [0.1, 1.0]})
    assert judged(Assertion("similar", ["Hello", "Goodbye"]), judge, output="bye").passed is True


def test_similar_with_a_judge_that_cannot_embed_is_skipped() -> None:
    result = judged(Assertion("similar", "Hello"), ScriptedJudge([]))
    assert result.passed is None and "embed" in result.reason


def test_similar_with_a_judge_whose_embeddings_fail_fails() -> None:
    # EchoProvider has embed() but refuses: that is a failure of the judge, not a skip.
    assert judged(Assertion("similar", "Hello"), EchoProvider()).passed is False


# --- consistency ---------------------------------------------------------------------------------


def test_fleiss_kappa_matches_the_worked_example() -> None:
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories, kappa 0.210.
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]  # fmt: skip
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=0.0005)


def test_fleiss_kappa_agrees_with_statsmodels() -> None:
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    generator = np.random.default_rng(7)
    for raters in (3, 5):
        passes = generator.integers(0, raters + 1, size=40)
        table = np.column_stack([passes, raters - passes])
        assert fleiss_kappa(table.tolist()) == pytest.approx(inter_rater.fleiss_kappa(table))


def test_fleiss_kappa_is_undefined_where_it_should_be() -> None:
    assert fleiss_kappa([]) is None
    assert fleiss_kappa([[1, 0], [0, 1]]) is None  # one rater per subject
    assert fleiss_kappa([[3, 0], [2, 0]]) is None  # unequal raters
    assert fleiss_kappa([[3, 0], [3, 0]]) is None  # every rating the same


def test_consistency_summary_counts_unanimous_assertions() -> None:
    results = [
        AssertionResult("llm-rubric", True, 1.0, "", repeats=[True, True, True]),
        AssertionResult("llm-rubric", False, 0.0, "", repeats=[False, False, False]),
        AssertionResult("llm-rubric", True, 0.7, "", repeats=[True, False, True]),
        AssertionResult("contains", True, 1.0, ""),  # not judged: left out
    ]
    summary = judge_consistency(results)
    assert summary.judged == 3
    assert summary.unanimity == pytest.approx(2 / 3)
    assert summary.kappa == pytest.approx(fleiss_kappa([[3, 0], [0, 3], [2, 1]]))
    assert summary.inconsistent is True  # 0.67 < 0.9
    assert JudgeConsistency.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary


def rubric_cases(count: int) -> EvalSet:
    cases = [
        EvalCase(f"case-{n}", vars={"name": "Ada" if n % 2 else "Bob"}, assertions=[RUBRIC])
        for n in range(count)
    ]
    return EvalSet("rubric", cases, sha256="0" * 64)


def render(variables: dict[str, object]) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": f"Hello {variables['name']}"}])


def test_a_judge_answering_at_random_is_flagged_inconsistent() -> None:
    run = run_eval(rubric_cases(30), render, EchoProvider(), judge=CoinJudge(seed=11))
    # Three fair coins agree with probability 2 * 0.5**3 = 0.25: far below the 0.9 floor.
    assert run.judge.judged == 30
    assert run.judge.unanimity is not None and run.judge.unanimity < UNANIMITY_FLOOR
    assert run.judge.inconsistent is True
    assert run.judge.kappa is not None and abs(run.judge.kappa) < 0.3  # no agreement beyond chance


def test_a_deterministic_judge_is_not_flagged() -> None:
    run = run_eval(rubric_cases(30), render, EchoProvider(), judge=SteadyJudge())
    assert run.judge.unanimity == 1.0
    assert run.judge.inconsistent is False
    assert run.judge.kappa == pytest.approx(1.0)  # half pass, half fail, always unanimously
    assert run.n_passed == 15 and run.n_failed == 15  # the odd cases greet Ada


def test_repeats_must_be_positive() -> None:
    with pytest.raises(InvalidInputError, match="repeats"):
        run_eval(rubric_cases(1), render, EchoProvider(), judge=SteadyJudge(), repeats=0)
