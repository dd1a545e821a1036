"""The LLM loop end to end, over a real ``steward serve`` and the shipped fake provider.

A prompt file changes, ``steward apply`` registers version 2, the eval gate runs it against
``production`` on the fake OpenAI-compatible server and fails it when the fake's verbosity knob
breaks the ``word-count`` assertion on most cases (exit 1), passes it when it does not (exit 0), the
label moves citing the passing run, a client sees the new version within its staleness bound, and
``steward rollback`` moves it back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from steward.cli.main import cli
from steward.client import Client
from steward.core import Steward
from steward.llm import eval_runs, prompts
from steward.testing import FakeLLMServer

from .conftest import Server

WORD_LIMIT = 60  # answers at verbosity 1 are about 20-40 words; at verbosity 3, three times that
QUESTIONS = [
    "Where is my parcel?",
    "How do I reset my router?",
    "Can I change my billing date?",
    "Why is my bill higher this month?",
    "How do I cancel my contract?",
    "Is fiber available at my address?",
    "How do I add a second line?",
    "What does the late fee cover?",
    "Can I pause my subscription?",
    "How do I update my card?",
    "Why is my internet slow at night?",
    "How do I port my number?",
]

PROMPT = """\
description: Answer a customer's support question.
provider: fake
model: fake-model
parameters: {{temperature: 0}}
variables: [question]
messages:
  - role: system
    content: {system}
  - role: user
    content: "{{{{ question }}}}"
"""


def config(base_url: str) -> str:
    return yaml.safe_dump(
        {
            "version": 1,
            "systems": [
                {
                    "name": "support",
                    "task": "llm",
                    "owner": "support@example.com",
                    "providers": {"fake": {"kind": "openai", "base_url": base_url}},
                    "prompts": [
                        {"name": "answer", "file": "prompts/answer.yaml", "evals": "evals.yaml"}
                    ],
                }
            ],
        }
    )


def eval_set() -> str:
    cases = [
        {
            "description": f"q{index}",
            "vars": {"question": question},
            "assert": [
                {"type": "word-count", "value": {"max": WORD_LIMIT}},
                {"type": "not-icontains", "value": "I'm sorry"},
            ],
        }
        for index, question in enumerate(QUESTIONS)
    ]
    return yaml.safe_dump({"cases": cases, "gate": {"assertions": {"word-count": 0.9}}})


class Workspace:
    def __init__(self, root: Path, database_url: str) -> None:
        self.root, self.database_url = root, database_url

    def __call__(self, *args: str, user: str = "ci") -> Result:
        base = ["--workspace", str(self.root), "--database-url", self.database_url, "--user", user]
        return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(seed=7) as server:
        yield server


@pytest.fixture
def ws(tmp_path: Path, fake: FakeLLMServer) -> Workspace:
    root = tmp_path / "ws"
    (root / "prompts").mkdir(parents=True)
    (root / "steward.yaml").write_text(config(fake.base_url))
    (root / "evals.yaml").write_text(eval_set())
    (root / "prompts" / "answer.yaml").write_text(PROMPT.format(system="You are brief."))
    workspace = Workspace(root, f"sqlite:///{root / 'store.db'}")
    assert workspace("init").exit_code == 0
    return workspace


def test_prompt_change_gated_promoted_served_and_rolled_back(
    ws: Workspace, fake: FakeLLMServer
) -> None:
    applied = ws("apply")
    assert "registered answer v1" in applied.output, applied.output

    # No eval evidence yet: production refuses v1 and says how to get it.
    refused = ws("prompts", "label", "support", "answer", "production", "1")
    assert refused.exit_code == 1 and "has no passed eval run" in refused.output
    first = ws("eval", "run", "support", "--prompt", "answer", "--version", "1")
    assert first.exit_code == 0, first.output
    assert "no baseline" in first.output
    moved = ws("prompts", "label", "support", "answer", "production", "1")
    assert moved.exit_code == 0 and "evidence: eval run #1" in moved.output, moved.output

    # The prompt file changes (a friendlier system message, a newer model); apply registers v2.
    changed = PROMPT.format(system="You are friendly.").replace("fake-model", "fake-model-2")
    (ws.root / "prompts" / "answer.yaml").write_text(changed)
    assert "registered answer v2" in ws("apply").output

    fake.configure(model="fake-model-2", verbosity=3)  # the new model rambles; v1's does not
    failed = ws("eval", "run", "support", "--prompt", "answer", "--version", "2", "--json")
    assert failed.exit_code == 1, failed.output
    stored = json.loads(failed.output)
    candidate = stored["result"]["candidate"]["cases"]
    counted = [
        len(case["output"].split()) > WORD_LIMIT for case in candidate
    ]  # counted here, from the stored answers, independently of the assertion code
    assert sum(counted) > len(QUESTIONS) / 2
    word_checks = [
        result["passed"]
        for case in candidate
        for result in case["assertions"]
        if result["type"] == "word-count"
    ]
    assert word_checks == [not over for over in counted]
    assert stored["decision"] == "fail"
    gate = stored["summary"]["gate"]
    baseline = stored["result"]["baseline"]["cases"]
    worse = sum(
        old["passed"] and not new["passed"] for old, new in zip(baseline, candidate, strict=True)
    )
    assert (gate["worse"], gate["better"]) == (worse, 0) and worse > len(QUESTIONS) / 2
    assert gate["p_value"] == pytest.approx(0.5**worse)  # exact binomial tail, all one way
    assert any("worse than the baseline beyond chance" in reason for reason in gate["reasons"])
    assert any("'word-count' held in" in reason for reason in gate["reasons"])
    # Every case kept its tokens and latency, for the cost of the run.
    assert all(case["completion"]["output_tokens"] > 0 for case in candidate)

    fake.configure(model="fake-model-2", verbosity=1)
    passed = ws("eval", "run", "support", "--prompt", "answer", "--version", "2")
    assert passed.exit_code == 0, passed.output
    assert "gate passed" in passed.output and "baseline" in passed.output
    runs = _runs(ws)
    assert [run.decision for run in runs] == ["pass", "fail", "pass"]

    server = Server(ws.root, ws.database_url)
    server.start()
    try:
        with Client(server.url, prompt_max_staleness=1.0) as client:
            assert client.prompt("answer").version == 1
            label = ws("prompts", "label", "support", "answer", "production", "2")
            assert f"evidence: eval run #{runs[0].id}" in label.output, label.output
            assert _seen_within(client, 2, bound=1.0)
            back = ws("rollback", "support", "--prompt", "answer")
            assert "v2 -> v1" in back.output, back.output
            assert _seen_within(client, 1, bound=1.0)
    finally:
        server.close()
    history = ws("prompts", "history", "support", "answer")
    assert "rollback" in history.output


def test_usage_errors_exit_2_so_ci_tells_them_from_a_failed_gate(ws: Workspace) -> None:
    ws("apply")
    unknown = ws("eval", "run", "nope", "--prompt", "answer")
    assert unknown.exit_code == 2 and "unknown system 'nope'" in unknown.output
    missing = ws("eval", "run", "support", "--prompt", "answer", "--eval", "absent.yaml")
    assert missing.exit_code == 2 and "absent.yaml" in missing.output
    neither = ws("eval", "run", "not-a-file.yaml")
    assert neither.exit_code == 2 and "--prompt" in neither.output


def _runs(ws: Workspace) -> list[eval_runs.EvalRun]:
    with Steward.open(ws.root, database_url=ws.database_url) as steward:
        return eval_runs.list_runs(steward.store, "support", "answer")


def _seen_within(client: Client, version: int, *, bound: float) -> bool:
    """The client serves ``version`` within ``bound`` (plus scheduling slack) of the move."""
    moved = time.monotonic()
    while time.monotonic() - moved <= bound + 0.5:
        if client.prompt("answer").version == version:
            return True
        time.sleep(0.05)
    return False


def test_a_stored_run_reads_back_over_http(ws: Workspace, fake: FakeLLMServer) -> None:
    ws("apply")
    assert ws("eval", "run", "support", "--prompt", "answer", "--version", "1").exit_code == 0
    steward = Steward.open(ws.root, database_url=ws.database_url)
    try:
        run = eval_runs.list_runs(steward.store)[0]
        assert prompts.get_prompt(steward.store, "support", "answer", run.version).version == 1
    finally:
        steward.close()
    server = Server(ws.root, ws.database_url)
    server.start()
    try:
        listing = httpx.get(f"{server.url}/v1/evals", params={"system": "support"}).json()
        assert [item["decision"] for item in listing["runs"]] == ["pass"]
        detail = httpx.get(f"{server.url}/v1/evals/{listing['runs'][0]['id']}").json()
        assert len(detail["result"]["candidate"]["cases"]) == len(QUESTIONS)
        missing = httpx.get(f"{server.url}/v1/evals/999")
        assert missing.status_code == 404 and "no eval run #999" in missing.json()["detail"]
    finally:
        server.close()


@pytest.mark.parametrize("mode", ["consistent", "random"])
def test_a_judge_answering_at_random_is_flagged(
    tmp_path: Path, fake: FakeLLMServer, mode: str
) -> None:
    root = tmp_path / "judged"
    (root / "prompts").mkdir(parents=True)
    declared = yaml.safe_load(config(fake.base_url))
    declared["systems"][0]["judge"] = {"provider": "fake", "model": "fake-judge", "repeats": 3}
    (root / "steward.yaml").write_text(yaml.safe_dump(declared))
    (root / "prompts" / "answer.yaml").write_text(PROMPT.format(system="You are brief."))
    rubric = [{"type": "llm-rubric", "value": "mentions the customer's question politely"}]
    cases = [{"vars": {"question": q}, "assert": rubric} for q in QUESTIONS * 3]
    (root / "evals.yaml").write_text(yaml.safe_dump({"cases": cases}))
    ws = Workspace(root, f"sqlite:///{root / 'store.db'}")
    ws("init")
    ws("apply")
    fake.configure(judge=mode)
    ran = ws("eval", "run", "support", "--prompt", "answer", "--no-baseline", "--json")
    judge = json.loads(ran.output)["summary"]["candidate"]["judge"]
    assert judge["judged"] == len(cases)
    # Each judged assertion was put to the judge three times, and the repeats were kept.
    stored = json.loads(ran.output)["result"]["candidate"]["cases"]
    assert all(len(case["assertions"][0]["repeats"]) == 3 for case in stored)
    if mode == "random":
        assert judge["inconsistent"] and judge["unanimity"] < 0.9
        shown = ws("eval", "show", str(json.loads(ran.output)["id"]))
        assert "the judge is inconsistent" in shown.output
    else:
        assert not judge["inconsistent"] and judge["unanimity"] == 1.0


def test_the_judge_prompt_is_the_one_the_fake_recognises() -> None:
    from steward.llm.evals.judges import RUBRIC_SYSTEM_PROMPT
    from steward.testing import JUDGE_SYSTEM_PROMPT

    assert RUBRIC_SYSTEM_PROMPT == JUDGE_SYSTEM_PROMPT
