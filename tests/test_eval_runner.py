"""Eval sets load from YAML, JSONL and CSV with clear errors, and a run never crashes on a case.

Runs go through the real EchoProvider (the answer is the rendered prompt), so each expected
verdict follows from the template; a failing provider is a small class standing in for a paid one.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path

import pytest

from steward.errors import InvalidInputError
from steward.llm.evals.cases import Assertion, EvalCase, EvalSet, load_eval_set
from steward.llm.evals.runner import EvalResult, run_eval, skipped_run
from steward.llm.providers import ChatRequest, Completion, EchoProvider, ProviderError

GREETINGS = """\
name: greetings
default:
  vars: {greeting: Hello}
  assert:
    - type: not-icontains
      value: sorry
cases:
  - id: ada
    description: greets Ada by name
    vars: {name: Ada}
    critical: true
    assert:
      - {type: contains, value: Ada}
      - {type: word-count, value: {max: 5}}
  - description: greets Bob
    vars: {name: Bob, greeting: Hi}
    expected: Hi Bob
  - vars: {name: Sorry Cat}
    assertions:
      - type: starts-with
        value: Hello
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def render(variables: dict[str, object]) -> ChatRequest:
    greeting = variables.get("greeting", "Hello")
    return ChatRequest(messages=[{"role": "user", "content": f"{greeting} {variables['name']}"}])


# --- loading -------------------------------------------------------------------------------------


def test_a_yaml_eval_set_merges_defaults_and_names_cases(tmp_path: Path) -> None:
    path = write(tmp_path, "greet.yaml", GREETINGS)
    eval_set = load_eval_set(path)
    assert eval_set.name == "greetings"
    assert eval_set.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [case.id for case in eval_set.cases] == ["ada", "greets Bob", "case-3"]
    ada, bob, third = eval_set.cases
    assert ada.critical is True and bob.critical is False
    assert ada.vars == {"greeting": "Hello", "name": "Ada"}
    assert bob.vars["greeting"] == "Hi"  # a case's var overrides the default
    assert [a.type for a in ada.assertions] == ["not-icontains", "contains", "word-count"]
    assert bob.assertions[-1] == Assertion("equals", "Hi Bob")  # the expected: shorthand
    assert [a.type for a in third.assertions] == ["not-icontains", "starts-with"]


def test_a_jsonl_eval_set_reads_one_case_per_line(tmp_path: Path) -> None:
    lines = [
        {"id": "one", "vars": {"name": "Ada"}, "assert": [{"type": "contains", "value": "Ada"}]},
        {"vars": {"name": "Bob"}, "expected": "Hello Bob"},
    ]
    path = write(tmp_path, "greet.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    eval_set = load_eval_set(path)
    assert eval_set.name == "greet"
    assert [case.id for case in eval_set.cases] == ["one", "case-2"]


def test_a_csv_eval_set_reads_promptfoo_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "greet.csv",
        "name,__expected,__expected1,__expected2,__description,__critical,__threshold\n"
        "Ada,contains:Ada,not-icontains:sorry,Hello Ada,greets Ada,true,\n"
        'Bob,"contains-any:Bob,Robert",levenshtein(2):Hallo Bob,regex:^Hello,,no,0.5\n',
    )
    ada, bob = load_eval_set(path).cases
    assert ada.id == "greets Ada" and ada.critical is True and ada.vars == {"name": "Ada"}
    assert [(a.type, a.value) for a in ada.assertions] == [
        ("contains", "Ada"),
        ("not-icontains", "sorry"),
        ("equals", "Hello Ada"),  # a bare value means equals
    ]
    assert bob.id == "case-2" and bob.critical is False and bob.threshold == 0.5
    assert bob.assertions[0] == Assertion("contains-any", ["Bob", "Robert"])
    assert bob.assertions[1] == Assertion("levenshtein", "Hallo Bob", threshold=2.0)


def load_error(tmp_path: Path, text: str, name: str = "bad.yaml") -> str:
    with pytest.raises(InvalidInputError) as raised:
        load_eval_set(write(tmp_path, name, text))
    return str(raised.value)


def test_an_unknown_assertion_type_names_the_file_case_and_known_types(tmp_path: Path) -> None:
    message = load_error(
        tmp_path, "- id: first\n  vars: {}\n  assert: [{type: contians, value: x}]\n"
    )
    assert "bad.yaml" in message and "case 1 ('first')" in message and "'contians'" in message
    assert "contains" in message and "word-count" in message  # the known types are listed


def test_a_promptfoo_type_steward_does_not_run_is_refused_in_its_own_eval_sets(
    tmp_path: Path,
) -> None:
    message = load_error(tmp_path, "- assert: [{type: javascript, value: 'output.length'}]\n")
    assert "'javascript'" in message and "does not run" in message


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("{vars: {}, asert: []}", "'asert'"),
        ("{assert: [{type: contains}]}", "non-empty string"),
        ("{assert: [{type: regex, value: '(unclosed'}]}", "not a valid regular expression"),
        (
            "{assert: [{type: word-count, value: {min: 9, max: 2}}]}",
            "min (9) must not exceed max (2)",
        ),
        ("{assert: [{type: latency}]}", "needs a 'threshold'"),
        ("{assert: [{type: contains, value: a, weight: -1}]}", "'weight' must be a number >= 0"),
        ("{assert: [{type: contains, value: file://missing.txt}]}", "no file"),
        ("{critical: maybe, assert: []}", "'critical' must be true or false"),
        ("{threshold: high, assert: []}", "'threshold' must be a number"),
        ("{vars: [a, b]}", "'vars' must be a mapping"),
    ],
)
def test_bad_cases_fail_the_load_naming_the_key(tmp_path: Path, case: str, fragment: str) -> None:
    assert fragment in load_error(tmp_path, f"- {case}\n")


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, "- {id: same, expected: a}\n- {id: same, expected: b}\n")
    assert "cases 1 and 2 share the id 'same'" in message


def test_unreadable_files_are_refused_clearly(tmp_path: Path) -> None:
    assert "line 2" in load_error(tmp_path, '{"expected": "a"}\n{oops\n', name="bad.jsonl")
    with pytest.raises(InvalidInputError, match="no such file"):
        load_eval_set(tmp_path / "none.yaml")
    assert ".txt" in load_error(tmp_path, "x", name="cases.txt")
    assert "unknown special column" in load_error(
        tmp_path, "name,__prefix\nAda,x\n", name="bad.csv"
    )


def test_file_values_load_relative_to_the_eval_set(tmp_path: Path) -> None:
    write(tmp_path, "expected.json", '{"city": "Paris"}')
    eval_set = load_eval_set(
        write(tmp_path, "set.yaml", "- assert: [{type: equals, value: file://expected.json}]\n")
    )
    assert eval_set.cases[0].assertions[0].value == {"city": "Paris"}


# --- running -------------------------------------------------------------------------------------


def test_a_run_checks_every_case_and_sums_up(tmp_path: Path) -> None:
    eval_set = load_eval_set(write(tmp_path, "greet.yaml", GREETINGS))
    seen: list[tuple[int, int]] = []
    run = run_eval(
        eval_set, render, EchoProvider(), progress=lambda done, total: seen.append((done, total))
    )
    by_id = {case.case_id: case for case in run.cases}
    # "Hello Ada": contains Ada, 2 words, no "sorry" -> pass.
    assert by_id["ada"].passed is True and by_id["ada"].output == "Hello Ada"
    # "Hi Bob" equals the expected "Hi Bob" -> pass.
    assert by_id["greets Bob"].passed is True
    # "Hello Sorry Cat" starts with Hello but contains "sorry" (any case) -> fail.
    assert by_id["case-3"].passed is False
    assert (run.n_passed, run.n_failed, run.n_skipped) == (2, 1, 0)
    assert run.pass_rate == pytest.approx(2 / 3)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert run.eval_set == "greetings" and run.eval_set_sha256 == eval_set.sha256
    assert run.provider == "echo"
    # The echo provider counts words as tokens: 2 + 2 + 3 in and out.
    assert (run.input_tokens, run.output_tokens) == (7, 7)
    assert run.cost == 0.0
    latencies = [case.completion["latency_ms"] for case in run.cases if case.completion]
    assert run.latency_p50_ms == pytest.approx(statistics.median(latencies))
    assert run.latency_max_ms == max(latencies)


class FlakyProvider:
    """Fails for one name, answers with unknown cost otherwise: a stand-in for a paid API."""

    id = "flaky"

    def complete(self, request: ChatRequest) -> Completion:
        if "Bob" in request.text:
            raise ProviderError("503 from upstream")
        return Completion(
            text=request.text, input_tokens=3, output_tokens=4, latency_ms=12.0, cost=None
        )


def cases(*names: str, critical: bool = False) -> EvalSet:
    made = [
        EvalCase(
            name, vars={"name": name}, assertions=[Assertion("contains", name)], critical=critical
        )
        for name in names
    ]
    return EvalSet("names", made, sha256="0" * 64)


def test_a_provider_error_fails_its_case_and_the_run_goes_on() -> None:
    run = run_eval(cases("Ada", "Bob", "Cy", critical=True), render, FlakyProvider())
    bob = run.cases[1]
    assert bob.passed is False and bob.error is not None and "503 from upstream" in bob.error
    assert bob.assertions[0].passed is None  # not checked, and not counted as passed
    assert [case.passed for case in run.cases] == [True, False, True]
    assert run.failed_critical == ["Bob"]
    assert run.cost is None  # one answer's cost is unknown, so the total is too


def test_a_render_error_fails_its_case_only() -> None:
    def fussy(variables: dict[str, object]) -> ChatRequest:
        if variables["name"] == "Ada":
            raise KeyError("surname")
        return render(variables)

    run = run_eval(cases("Ada", "Bob"), fussy, EchoProvider())
    assert run.cases[0].passed is False and "could not render" in (run.cases[0].error or "")
    assert run.cases[1].passed is True


def test_skipped_cases_are_neither_passed_nor_failed() -> None:
    skipped = EvalCase(
        "judged", vars={"name": "Ada"}, assertions=[Assertion("llm-rubric", "polite")]
    )
    passing = EvalCase("plain", vars={"name": "Ada"}, assertions=[Assertion("contains", "Ada")])
    run = run_eval(EvalSet("mixed", [skipped, passing], "0" * 64), render, EchoProvider())
    assert (
        run.cases[0].passed is None
        and "no judge provider configured" in run.cases[0].assertions[0].reason
    )
    assert (run.n_passed, run.n_failed, run.n_skipped) == (1, 0, 1)
    assert run.pass_rate == 1.0  # over the case that ran


def test_a_run_where_nothing_ran_has_no_pass_rate() -> None:
    run = skipped_run(cases("Ada"), "anthropic:claude", "not supported")
    assert (run.n_skipped, run.pass_rate, run.cost, run.latency_p50_ms) == (1, None, 0.0, None)
    assert "not supported" in run.cases[0].reason


def test_a_stored_run_reads_back_as_it_was(tmp_path: Path) -> None:
    eval_set = load_eval_set(write(tmp_path, "greet.yaml", GREETINGS))
    run = run_eval(eval_set, render, EchoProvider(), label="v2")
    stored = json.loads(json.dumps(run.to_dict()))  # JSON-safe all the way down
    assert stored["passed"] == 2 and stored["failed_critical"] == []
    restored = EvalResult.from_dict(stored)
    assert restored == run
    assert restored.to_dict() == run.to_dict()
