"""Deterministic assertions follow promptfoo's documented semantics; a case's outcome follows them.

Expectations are worked out from the documentation's rules in each test (promptfoo's
"deterministic metrics", "weighted assertions" and "python assertions" pages), not read back from
the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steward.llm.evals.assertions import (
    DEFAULT_LEVENSHTEIN_THRESHOLD,
    AssertionResult,
    CheckContext,
    case_outcome,
    check_assertion,
    levenshtein_distance,
)
from steward.llm.evals.cases import Assertion
from steward.llm.providers import Completion


def check(kind: str, value: object, output: str, **options: object) -> AssertionResult:
    context = options.pop("context", None) or CheckContext(vars={"name": "Ada"})
    assert isinstance(context, CheckContext)
    return check_assertion(Assertion(kind, value, **options), output, context)  # type: ignore[arg-type]


# --- contains family -------------------------------------------------------------------------


def test_contains_is_case_sensitive_and_icontains_is_not() -> None:
    assert check("contains", "Ada", "Hello Ada").passed is True
    assert check("contains", "ada", "Hello Ada").passed is False
    assert check("icontains", "ADA", "Hello Ada").passed is True


def test_not_prefix_inverts_the_pass_and_the_score() -> None:
    result = check("not-contains", "sorry", "I am sorry")
    assert (result.passed, result.score) == (False, 0.0)
    result = check("not-contains", "sorry", "Happy to help")
    assert (result.passed, result.score) == (True, 1.0)


def test_a_number_value_matches_its_text_as_javascript_writes_it() -> None:
    # promptfoo converts numbers with String(): YAML 1.0 is the number 1, written "1".
    assert check("contains", 1.0, "answer: 1").passed is True
    assert check("contains", 0, "0 items").passed is True


def test_contains_any_needs_one_and_contains_all_needs_every_value() -> None:
    output = "Paris is the capital of France"
    assert check("contains-any", ["Lyon", "Paris"], output).passed is True
    assert check("contains-any", ["Lyon", "Nice"], output).passed is False
    assert check("contains-all", ["Paris", "France"], output).passed is True
    missing = check("contains-all", ["Paris", "Spain"], output)
    assert missing.passed is False
    assert "Spain" in missing.reason


def test_case_insensitive_list_variants() -> None:
    output = "Paris is the capital of France"
    assert check("icontains-any", ["PARIS"], output).passed is True
    assert check("icontains-all", ["paris", "FRANCE"], output).passed is True
    assert check("icontains-all", ["paris", "spain"], output).passed is False


def test_values_are_rendered_with_the_case_vars() -> None:
    context = CheckContext(vars={"name": "Grace"})
    assert check("contains", "{{ name }}", "Hi Grace", context=context).passed is True
    assert check("contains", "{{ name }}", "Hi Ada", context=context).passed is False


# --- equals, starts-with, regex ------------------------------------------------------------------


def test_equals_compares_text_exactly() -> None:
    assert check("equals", "Hello Ada", "Hello Ada").passed is True
    assert check("equals", "Hello Ada", "Hello Ada.").passed is False
    assert check("equals", True, "true").passed is True  # JavaScript's String(true)


def test_equals_deep_compares_json_when_the_value_is_an_object() -> None:
    expected = {"city": "Paris", "tags": [1, 2]}
    assert check("equals", expected, '{"tags": [1, 2], "city": "Paris"}').passed is True
    assert check("equals", expected, '{"tags": [2, 1], "city": "Paris"}').passed is False
    # promptfoo's deep equality is strict: true is not 1.
    assert check("equals", {"ok": 1}, '{"ok": true}').passed is False


def test_not_equals_passes_when_the_output_is_not_json() -> None:
    # The output cannot deep-equal an object if it is not JSON at all.
    assert check("equals", {"a": 1}, "plain text").passed is False
    assert check("not-equals", {"a": 1}, "plain text").passed is True


def test_starts_with() -> None:
    assert check("starts-with", "Dear", "Dear Ada").passed is True
    assert check("starts-with", "Ada", "Dear Ada").passed is False


def test_regex_searches_anywhere_unless_anchored() -> None:
    assert check("regex", r"\d{4}", "order 1234 shipped").passed is True
    assert check("regex", r"^\d{4}", "order 1234 shipped").passed is False
    assert check("not-regex", r"\d{3}-\d{4}", "call 555-1234").passed is False


# --- is-json -------------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["latitude", "longitude"],
    "properties": {
        "latitude": {"type": "number", "minimum": -90, "maximum": 90},
        "longitude": {"type": "number", "minimum": -180, "maximum": 180},
    },
}


def test_is_json_accepts_json_and_refuses_what_json_does_not_allow() -> None:
    assert check("is-json", None, '{"a": [1, 2]}').passed is True
    assert check("is-json", None, "{'a': 1}").passed is False
    assert check("is-json", None, '{"a": NaN}').passed is False  # not JSON, though Python reads it
    assert check("not-is-json", None, "hello").passed is True


def test_is_json_validates_against_a_schema() -> None:
    assert check("is-json", SCHEMA, '{"latitude": 48.8, "longitude": 2.3}').passed is True
    out_of_range = check("is-json", SCHEMA, '{"latitude": 123, "longitude": 2.3}')
    assert out_of_range.passed is False
    assert "latitude" in out_of_range.reason
    assert check("not-is-json", SCHEMA, '{"latitude": 123, "longitude": 2.3}').passed is True


def test_an_invalid_schema_fails_even_when_negated() -> None:
    bad = {"type": "no-such-type"}
    assert check("is-json", bad, "{}").passed is False
    assert check("not-is-json", bad, "{}").passed is False


# --- word-count, levenshtein ---------------------------------------------------------------------


def test_word_count_exact_and_ranges() -> None:
    output = "one two  three\nfour"  # four words, split on any whitespace
    assert check("word-count", 4, output).passed is True
    assert check("word-count", 5, output).passed is False
    assert check("word-count", {"min": 2, "max": 4}, output).passed is True
    assert check("word-count", {"min": 5, "max": None}, output).passed is False
    assert check("word-count", {"min": None, "max": 3}, output).passed is False
    assert check("not-word-count", {"min": None, "max": 3}, output).passed is True


def test_levenshtein_distance_on_known_pairs() -> None:
    assert levenshtein_distance("kitten", "sitting") == 3  # k->s, e->i, +g
    assert levenshtein_distance("flaw", "lawn") == 2  # -f, +n
    assert levenshtein_distance("", "abc") == 3
    assert levenshtein_distance("same", "same") == 0


@given(st.text(max_size=12), st.text(max_size=12), st.text(max_size=12))
def test_levenshtein_is_a_metric(a: str, b: str, c: str) -> None:
    assert levenshtein_distance(a, b) == levenshtein_distance(b, a)
    assert abs(len(a) - len(b)) <= levenshtein_distance(a, b) <= max(len(a), len(b))
    assert levenshtein_distance(a, c) <= levenshtein_distance(a, b) + levenshtein_distance(b, c)


def test_levenshtein_passes_within_the_threshold_default_five() -> None:
    assert DEFAULT_LEVENSHTEIN_THRESHOLD == 5
    assert check("levenshtein", "sitting", "kitten").passed is True  # 3 <= 5
    assert check("levenshtein", "sitting", "kitten", threshold=2).passed is False  # 3 > 2
    assert check("levenshtein", "abcdef", "uvwxyz").passed is False  # 6 > 5


# --- latency, cost -------------------------------------------------------------------------------


def completion_context(**fields: object) -> CheckContext:
    return CheckContext(completion=Completion(text="ok", **fields))  # type: ignore[arg-type]


def test_latency_is_at_most_the_threshold() -> None:
    slow = completion_context(latency_ms=250.0)
    assert check("latency", None, "ok", threshold=300, context=slow).passed is True
    assert check("latency", None, "ok", threshold=200, context=slow).passed is False
    assert check("not-latency", None, "ok", threshold=200, context=slow).passed is True


def test_cost_is_at_most_the_threshold() -> None:
    cheap = completion_context(cost=0.0004)
    assert check("cost", None, "ok", threshold=0.001, context=cheap).passed is True
    assert check("cost", None, "ok", threshold=0.0001, context=cheap).passed is False


def test_an_unknown_cost_fails_and_never_passes_even_negated() -> None:
    unknown = completion_context(cost=None, model="mystery-1")
    for kind in ("cost", "not-cost"):
        result = check(kind, None, "ok", threshold=1.0, context=unknown)
        assert result.passed is False
        assert "unknown" in result.reason and "mystery-1" in result.reason


# --- python --------------------------------------------------------------------------------------


def test_an_inline_python_expression_sees_output_and_context() -> None:
    context = CheckContext(vars={"city": "Paris"})
    code = "context['vars']['city'] in output"
    assert check("python", code, "Paris, France", context=context).passed is True
    assert check("python", code, "Lyon, France", context=context).passed is False


def test_a_python_number_passes_above_zero_or_at_the_threshold() -> None:
    # promptfoo: without a threshold a number passes when > 0; with one, when >= threshold.
    assert check("python", "len(output) / 10", "abcde").passed is True  # 0.5 > 0
    assert check("python", "0", "abcde").passed is False
    result = check("python", "len(output) / 10", "abcde", threshold=0.6)
    assert (result.passed, result.score) == (False, 0.5)
    assert check("python", "len(output) / 10", "abcdef", threshold=0.6).passed is True


def test_not_python_inverts_the_pass_and_keeps_a_returned_score() -> None:
    result = check("not-python", "0.25", "x", threshold=0.5)  # 0.25 < 0.5: fails, so not- passes
    assert (result.passed, result.score) == (True, 0.25)


def test_a_multiline_python_body_may_return_a_grading_result() -> None:
    code = """
if output == 'Expected output':
    return {'pass': True, 'score': 0.5, 'reason': 'exact'}
return {'pass_': False, 'score': 0, 'reason': 'different'}
"""
    hit = check("python", code, "Expected output")
    assert (hit.passed, hit.score) == (True, 0.5)
    assert "exact" in hit.reason
    miss = check("python", code, "Other")
    assert (miss.passed, miss.score) == (False, 0.0)


def test_a_grading_result_below_the_threshold_fails() -> None:
    code = "{'pass': True, 'score': 0.4, 'reason': 'meh'}"
    assert check("python", code, "x", threshold=0.5).passed is False


def test_python_from_a_file_calls_get_assert_or_the_named_function(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(
        "def get_assert(output, context):\n"
        "    return {'pass': 'Ada' in output, 'score': 0.9, 'reason': 'named'}\n"
        "def short(output, context):\n"
        "    return len(output) <= context['config']['limit']\n"
    )
    context = CheckContext(base_dir=tmp_path)
    default = check("python", "file://checks.py", "Hi Ada", context=context)
    assert (default.passed, default.score) == (True, 0.9)
    named = Assertion("python", "file://checks.py:short", config={"limit": 3})
    assert check_assertion(named, "Hi Ada", context).passed is False
    assert check_assertion(named, "Hi", context).passed is True


def test_a_python_check_that_raises_or_returns_nonsense_fails_with_the_reason() -> None:
    raised = check("python", "1 / 0", "x")
    assert raised.passed is False and "ZeroDivisionError" in raised.reason
    assert check("not-python", "1 / 0", "x").passed is False  # an error never passes
    nonsense = check("python", "None", "x")
    assert nonsense.passed is False and "return a bool" in nonsense.reason


def test_python_may_return_true_or_false_as_text() -> None:
    assert check("python", "'True'", "x").passed is True
    assert check("python", "'false'", "x").passed is False


def test_an_assertion_built_in_code_is_held_to_the_loading_rules() -> None:
    # promptfoo's comma-separated form works however the assertion was made...
    assert check("contains-any", "Lyon, Paris", "Paris").passed is True
    # ...and what loading would refuse fails the assertion instead of crashing the run.
    unknown = check("contians", "Ada", "Ada")
    assert unknown.passed is False and "unknown assertion type" in unknown.reason
    assert check("latency", None, "x").passed is False  # no threshold
    broken = check("contains", "{{ name", "Ada")
    assert broken.passed is False and "cannot render" in broken.reason


# --- skipping and case outcomes ------------------------------------------------------------------


def test_an_unsupported_or_judged_assertion_is_skipped_never_passed() -> None:
    unsupported = Assertion("javascript", "output.length > 0", unsupported="no JavaScript here")
    result = check_assertion(unsupported, "x", CheckContext())
    assert result.passed is None and "no JavaScript here" in result.reason
    assert check_assertion(Assertion("llm-rubric", "polite"), "x", CheckContext()).passed is None


def result(passed: bool | None, weight: float = 1.0, score: float | None = None) -> AssertionResult:
    value = score if score is not None else float(bool(passed))
    return AssertionResult("contains", passed, value, "", weight=weight)


def test_weighted_score_follows_the_documented_example() -> None:
    # promptfoo's docs: equals (weight 2) fails, contains (weight 1) passes: score 1/3.
    results = [result(False, weight=2), result(True, weight=1)]
    passed, score, _ = case_outcome(results)
    assert passed is False and score == pytest.approx(1 / 3)
    assert case_outcome(results, threshold=0.5)[0] is False  # 0.33 < 0.5
    assert case_outcome(results, threshold=0.2)[0] is True  # 0.33 >= 0.2
    assert case_outcome(results, threshold=0)[0] is True  # 0 never fails on a single assertion


def test_a_zero_weight_failure_never_fails_the_case_nor_counts_in_the_score() -> None:
    results = [result(True), result(False, weight=0)]
    assert case_outcome(results)[:2] == (True, 1.0)
    failing = check("contains", "discount", "no offer", weight=0)
    assert failing.passed is False and "weight 0" in failing.reason


def test_skipped_assertions_are_left_out_and_all_skipped_skips_the_case() -> None:
    assert case_outcome([result(None), result(True)])[:2] == (True, 1.0)
    assert case_outcome([result(None), result(False)])[0] is False
    assert case_outcome([result(None), result(None)])[:2] == (None, None)
    assert case_outcome([])[0] is True  # promptfoo: a test with no assertions passes


def test_results_round_trip_through_json() -> None:
    original = AssertionResult("llm-rubric", True, 0.8, "polite", 2.0, [True, False, True], 2 / 3)
    assert AssertionResult.from_dict(json.loads(json.dumps(original.to_dict()))) == original
