"""A promptfoo configuration runs with promptfoo's documented semantics.

The fixture in ``tests/data/promptfoo`` is written as promptfoo's documentation shows a config:
prompts from files (a text prompt and a chat-message JSON prompt), the ``echo`` provider, a
``defaultTest`` with vars and assertions, a CSV tests file with ``__expected`` columns, and inline
tests using ``not-``, ``weight`` and ``threshold``. The echo provider answers with the rendered
prompt, so every verdict below is derived by hand from the templates and the documented rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from steward.errors import ConfigError
from steward.llm.evals.promptfoo import load_promptfoo, run_promptfoo
from steward.llm.evals.runner import CaseResult, EvalResult
from steward.llm.providers import ChatRequest, Completion, EchoProvider

FIXTURE = Path(__file__).parent / "data" / "promptfoo"

# What each case must give, and why. defaultTest adds two assertions to every case: not-icontains
# "as an AI" and word-count max 60 (every rendered prompt here is under 25 words). The text prompt
# renders three lines ending "Reply politely."; the chat prompt renders only the first two.
EXPECTED: dict[str, tuple[bool, bool]] = {  # case id -> (passes with reply.txt, with reply_chat)
    # contains Ada; no "refund" in "a late delivery".
    "names the customer": (True, True),
    # "a refund" contains REFUND ignoring case; both prompts start "You are the support desk".
    "mentions the refund": (True, True),
    # The issue text "speaking as an AI assistant" trips the default not-icontains "as an AI".
    "never sounds like a bot": (False, False),
    # Only the text prompt says "Reply politely".
    "asks for politeness": (True, False),
    # equals "Hello Eve" fails, the other three pass: score 3/4 = 0.75 >= the CSV __threshold 0.5.
    "exact answer with partial credit": (True, True),
    # Starts "You are"; no ddd-dddd phone number anywhere.
    "no phone numbers": (True, True),
    # Weights: equals 2 (fails), contains 1, two defaults 1 each: score 3/5 = 0.6 >= 0.5.
    "partial credit is enough": (True, True),
    # Same score 0.6, but the threshold is 0.7.
    "partial credit falls short": (False, False),
    # The missing "discount code" has weight 0: "if weight is set to 0, the assertion automatically
    # passes"; everything else passes.
    "a zero-weight check never fails": (True, True),
    # Both Python checks pass; javascript and llm-rubric are skipped (never passed), the rest decide.
    "custom checks": (True, True),
    # A list var runs the test once per value; each output contains login or password.
    "one case per channel [issue=a login problem]": (True, True),
    "one case per channel [issue=a lost password]": (True, True),
}


@pytest.fixture(scope="module")
def runs() -> list[EvalResult]:
    return run_promptfoo(FIXTURE / "promptfooconfig.yaml")


def by_id(run: EvalResult) -> dict[str, CaseResult]:
    return {case.case_id: case for case in run.cases}


def test_the_fixture_loads_as_promptfoo_describes_it() -> None:
    config = load_promptfoo(FIXTURE)
    assert config.description == "Support desk replies"
    assert [prompt.label for prompt in config.prompts] == ["prompts/reply.txt", "reply_chat"]
    assert [provider.id for provider in config.providers] == ["echo"]
    assert config.eval_set.name == "Support desk replies"
    assert sorted(case.id for case in config.eval_set.cases) == sorted(EXPECTED)
    ada = next(case for case in config.eval_set.cases if case.id == "names the customer")
    assert ada.vars == {"product": "Steward", "customer": "Ada", "issue": "a late delivery"}
    assert ada.critical is True
    assert [a.type for a in ada.assertions] == [
        "not-icontains",
        "word-count",
        "contains",
        "not-contains",
    ]


def test_each_prompt_runs_through_each_provider(runs: list[EvalResult]) -> None:
    assert [run.label for run in runs] == ["prompts/reply.txt | echo", "reply_chat | echo"]
    assert all(run.provider == "echo" for run in runs)


def test_each_case_passes_or_fails_as_promptfoo_semantics_say(runs: list[EvalResult]) -> None:
    for position, run in enumerate(runs):
        verdicts = {case_id: case.passed for case_id, case in by_id(run).items()}
        assert verdicts == {
            case_id: expected[position] for case_id, expected in EXPECTED.items()
        }, run.label


def test_the_outputs_are_the_rendered_prompts(runs: list[EvalResult]) -> None:
    text, chat = (by_id(run)["names the customer"] for run in runs)
    assert text.output == (
        "You are the support desk for Steward.\nCustomer Ada writes about: a late delivery\nReply politely.\n"
    )
    # echo joins the chat messages with newlines.
    assert (
        chat.output
        == "You are the support desk for Steward.\nCustomer Ada writes about: a late delivery"
    )


def test_scores_follow_the_weights(runs: list[EvalResult]) -> None:
    cases = by_id(runs[0])
    assert cases["exact answer with partial credit"].score == pytest.approx(3 / 4)
    assert cases["partial credit is enough"].score == pytest.approx(3 / 5)
    assert cases["partial credit falls short"].score == pytest.approx(3 / 5)
    assert cases["a zero-weight check never fails"].score == pytest.approx(1.0)


def test_what_steward_cannot_run_is_reported_skipped_never_passed(runs: list[EvalResult]) -> None:
    custom = by_id(runs[0])["custom checks"]
    status = {result.type: result.passed for result in custom.assertions}
    assert status["javascript"] is None and status["llm-rubric"] is None
    reasons = {result.type: result.reason for result in custom.assertions}
    assert "no judge provider configured" in reasons["llm-rubric"]
    assert "javascript" in reasons["javascript"]
    assert [result.passed for result in custom.assertions if result.type == "python"] == [
        True,
        True,
    ]


def test_a_judge_grades_the_rubric_when_given() -> None:
    class PoliteJudge:
        id = "polite-judge"

        def complete(self, request: ChatRequest) -> Completion:
            return Completion(text='{"reason": "fine", "pass": true, "score": 1}')

    runs = run_promptfoo(FIXTURE / "promptfooconfig.yaml", judge=PoliteJudge())
    rubric = next(r for r in by_id(runs[0])["custom checks"].assertions if r.type == "llm-rubric")
    assert (rubric.passed, rubric.repeats) == (True, [True, True, True])
    assert runs[0].judge.judged == 1 and runs[0].judge.inconsistent is False


def write_config(folder: Path, text: str) -> Path:
    path = folder / "promptfooconfig.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_default_grader_steward_cannot_build_skips_the_rubric_with_why(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "prompts: ['Hi {{name}}']\nproviders: [echo]\n"
        "defaultTest: {options: {provider: 'anthropic:messages:claude-sonnet'}}\n"
        "tests: [{vars: {name: Ada}, assert: [{type: llm-rubric, value: polite}]}]\n",
    )
    [run] = run_promptfoo(path)
    assert run.n_skipped == 1  # its only assertion could not be judged
    reason = run.cases[0].assertions[0].reason
    assert "no judge provider configured" in reason and "anthropic:messages:claude-sonnet" in reason


def test_an_unsupported_provider_is_skipped_with_the_reason(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "prompts: ['Hi {{name}}']\n"
        "providers: [echo, 'anthropic:messages:claude-sonnet',"
        " {id: 'openai:chat:gpt-4o-mini', label: mini}]\n"
        "tests: [{vars: {name: Ada}, assert: [{type: contains, value: Ada}]}]\n",
    )
    echo, anthropic, mini = run_promptfoo(path, provider_overrides={"mini": EchoProvider()})
    assert echo.n_passed == 1
    assert anthropic.n_skipped == 1 and anthropic.pass_rate is None
    assert "anthropic:messages:claude-sonnet" in anthropic.cases[0].reason
    assert mini.n_passed == 1 and mini.label == "Hi {{name}} | mini"  # the override answered


def test_a_provider_prompts_filter_limits_what_it_runs(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "prompts: [{raw: 'A {{x}}', label: 'short:a'}, {raw: 'B {{x}}', label: long}]\n"
        "providers: [{id: echo, prompts: [short]}]\n"
        "tests: [{vars: {x: '1'}}]\n",
    )
    assert [run.label for run in run_promptfoo(path)] == ["short:a | echo"]


def test_a_text_file_holds_several_prompts_split_on_dashes(tmp_path: Path) -> None:
    (tmp_path / "prompts.txt").write_text(
        "Translate to French: {{text}}\n---\nTranslate to German: {{text}}\n"
    )
    path = write_config(
        tmp_path,
        "prompts: [file://prompts.txt]\nproviders: [echo]\n"
        "tests: [{vars: {text: cat}, assert: [{type: contains, value: French}]}]\n",
    )
    french, german = run_promptfoo(path)
    assert french.cases[0].output == "Translate to French: cat" and french.n_passed == 1
    assert german.n_failed == 1


def test_a_prompt_written_as_code_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "prompt.py").write_text("def make(context):\n    return 'hi'\n")
    path = write_config(
        tmp_path, "prompts: ['file://prompt.py:make']\nproviders: [echo]\ntests: [{vars: {}}]\n"
    )
    [run] = run_promptfoo(path)
    assert run.n_skipped == 1 and "code" in run.cases[0].reason


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ("prompts: [hi]\n", "no providers"),
        ("prompts: [hi]\nproviders: [echo]\ntests: file://missing.csv\n", "no file"),
        ("prompts: [hi]\nproviders: [echo]\ntests: [42]\n", "neither a test mapping"),
        ("prompts: [file://none.txt]\nproviders: [echo]\n", "no file"),
        ("- just a list\n", "expected a mapping"),
    ],
)
def test_broken_configurations_fail_with_a_clear_error(
    tmp_path: Path, config: str, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_promptfoo(write_config(tmp_path, config))
