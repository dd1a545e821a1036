"""The fake OpenAI-compatible server, driven by the official ``openai`` client over real HTTP.

Expectations are derived from the knobs and the texts (words counted here with ``str.split``,
tokens with exact fractions), never read back from the fake's own helpers.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from scipy import stats

from steward.errors import InvalidInputError
from steward.llm.providers import ChatRequest, OpenAIProvider, ProviderError
from steward.testing import JUDGE_SYSTEM_PROMPT, FakeLLMServer, Knobs, grading_message

REFUSAL = "I'm sorry, but I can't help with that."
TOPICS = [
    "refunds", "invoices", "passwords", "shipping", "warranty", "discounts", "upgrades",
    "cancellations", "receipts", "deliveries", "subscriptions", "payments", "accounts",
    "vouchers", "returns", "exchanges", "repairs", "bookings", "tickets", "licences",
]  # fmt: skip


def ask(client: openai.OpenAI, content: str, **options: Any) -> Any:
    return client.chat.completions.create(
        **{"model": "fake-model", **options}, messages=[{"role": "user", "content": content}]
    )


def prompt(index: int) -> str:
    return f"How do {TOPICS[index % len(TOPICS)]} work for customer number {index}?"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


@pytest.fixture
def fake(server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """The shared server with every knob at its default, before and after the test."""
    defaults = Knobs().to_dict()
    server.configure(**defaults)
    yield server
    server.configure(**defaults)


@pytest.fixture(scope="module")
def client(server: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as made:
        yield made


def expected_tokens(words: int, tokens_per_word: Fraction) -> int:
    return math.ceil(words * tokens_per_word)


# Determinism


def test_the_same_seed_and_request_give_the_same_answer_and_usage(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    fake.configure(seed=7)
    first = [ask(client, prompt(i)) for i in range(5)]
    with (
        FakeLLMServer(seed=7) as other,
        openai.OpenAI(base_url=other.base_url, api_key="unused") as other_client,
    ):
        again = [ask(other_client, prompt(i)) for i in range(5)]
    for one, two in zip(first, again, strict=True):
        assert one.choices[0].message.content == two.choices[0].message.content
        assert one.usage == two.usage


def test_a_different_seed_gives_a_different_answer(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    seed_0 = [ask(client, prompt(i)).choices[0].message.content for i in range(5)]
    fake.configure(seed=1)
    seed_1 = [ask(client, prompt(i)).choices[0].message.content for i in range(5)]
    assert all(a != b for a, b in zip(seed_0, seed_1, strict=True))


def test_an_answer_is_readable_english_restating_the_prompt_in_20_to_40_words(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    for index in range(20):
        text = ask(client, prompt(index)).choices[0].message.content
        assert 20 <= len(text.split()) <= 40, text
        assert TOPICS[index % len(TOPICS)] in text
        assert re.fullmatch(r"[A-Z][A-Za-z0-9 ,.']*\.", text), text


def test_verbosity_3_gives_about_three_times_the_words(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    def total_words() -> int:
        return sum(
            len(ask(client, prompt(i)).choices[0].message.content.split()) for i in range(20)
        )

    at_1 = total_words()
    fake.configure(verbosity=3)
    at_3 = total_words()
    assert at_3 / at_1 == pytest.approx(fake.knobs.verbosity / 1, rel=0.1)


def test_knobs_for_one_model_leave_the_others_alone(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    def words(model: str) -> int:
        return sum(
            len(ask(client, prompt(i), model=model).choices[0].message.content.split())
            for i in range(20)
        )

    before = {model: words(model) for model in ("fake-model", "big-model")}
    fake.configure(model="big-model", verbosity=3)
    assert words("fake-model") == before["fake-model"]
    assert words("big-model") / before["big-model"] == pytest.approx(3, rel=0.1)
    # Over HTTP, from another process's point of view, and dropped with no knob.
    answer = httpx.post(
        fake.base_url.removesuffix("/v1") + "/_fake/config",
        json={"model": "big-model", "verbosity": 2},
    )
    assert answer.status_code == 200 and answer.json()["verbosity"] == 2.0
    assert words("big-model") / before["big-model"] == pytest.approx(2, rel=0.1)
    fake.configure(model="big-model")
    assert words("big-model") == before["big-model"]


def test_refusal_rate_half_refuses_about_half_of_200_distinct_prompts(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    fake.configure(refusal_rate=0.5)
    refused = [ask(client, prompt(i)).choices[0].message.content == REFUSAL for i in range(200)]
    low, high = stats.binom.interval(1 - 1e-6, 200, 0.5)
    assert low <= sum(refused) <= high
    # Chosen by the request's content, so a refused prompt stays refused.
    first = refused.index(True)
    assert ask(client, prompt(first)).choices[0].message.content == REFUSAL


# Usage


def test_usage_counts_the_words_of_every_message_times_tokens_per_word(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    messages = [
        {"role": "system", "content": "You are a terse support agent for a bike shop."},
        {"role": "user", "content": "My chain keeps slipping on the largest cog."},
    ]
    prompt_words = sum(len(message["content"].split()) for message in messages)
    for tokens_per_word in (Fraction(4, 3), Fraction(3, 2), Fraction(1)):
        fake.configure(tokens_per_word=float(tokens_per_word))
        response: Any = client.chat.completions.create(model="fake-model", messages=messages)  # type: ignore[arg-type]
        answer_words = len(response.choices[0].message.content.split())
        usage = response.usage
        assert usage.prompt_tokens == expected_tokens(prompt_words, tokens_per_word)
        assert usage.completion_tokens == expected_tokens(answer_words, tokens_per_word)
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_cached_and_reasoning_tokens_are_reported(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    fake.configure(cached_ratio=0.5, reasoning_tokens=64)
    response = ask(client, "Summarise the quarterly churn figures for the retention team, please.")
    usage = response.usage
    answer_words = len(response.choices[0].message.content.split())
    assert usage.prompt_tokens == expected_tokens(10, Fraction(4, 3))
    assert usage.prompt_tokens_details.cached_tokens == math.floor(usage.prompt_tokens * 0.5)
    assert usage.prompt_tokens_details.cached_tokens > 0
    assert usage.completion_tokens_details.reasoning_tokens == 64
    assert usage.completion_tokens == expected_tokens(answer_words, Fraction(4, 3)) + 64


def test_max_tokens_cuts_the_answer_with_finish_reason_length(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    whole = ask(client, prompt(3))
    assert whole.choices[0].finish_reason == "stop"
    cut = ask(client, prompt(3), max_completion_tokens=8)
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage.completion_tokens <= 8
    assert whole.choices[0].message.content.startswith(cut.choices[0].message.content)


# Streaming


def test_streaming_yields_the_same_text_as_a_whole_answer_and_a_usage_chunk(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    fake.configure(reasoning_tokens=5, cached_ratio=0.25)
    whole = ask(client, prompt(4))
    chunks = list(ask(client, prompt(4), stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len(chunks) > 5  # a word at a time, not one lump
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage == whole.usage
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_without_include_usage_sends_no_usage_chunk(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    chunks = list(ask(client, prompt(5), stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


# Embeddings


def test_embeddings_of_texts_sharing_words_are_closer_than_unrelated_ones(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    texts = [
        "refund policy for annual plans",
        "annual plans and their refund policy",
        "the blue whale migrates through cold oceans",
    ]
    response = client.embeddings.create(model="fake-embedding", input=texts)
    vectors = np.array([item.embedding for item in response.data])
    assert vectors.shape == (3, 256)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0, abs=1e-6)
    cosine = vectors @ vectors.T
    assert cosine[0, 1] > 0.8
    assert abs(cosine[0, 2]) < 0.3
    assert response.usage.prompt_tokens == expected_tokens(
        sum(len(t.split()) for t in texts), Fraction(4, 3)
    )
    floats = client.embeddings.create(
        model="fake-embedding", input=texts[0], encoding_format="float", dimensions=64
    )
    assert len(floats.data[0].embedding) == 64


# Judge


def grade(client: openai.OpenAI, output: str, rubric: str) -> dict[str, Any]:
    response = client.chat.completions.create(
        model="fake-model",
        messages=[
            {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
            {
                "role": "user",
                "content": f"<Output>\n{output}\n</Output>\n<Rubric>\n{rubric}\n</Rubric>",
            },
        ],
    )
    verdict: dict[str, Any] = json.loads(response.choices[0].message.content or "")
    return verdict


def test_the_judge_prompt_is_the_agreed_text() -> None:
    assert JUDGE_SYSTEM_PROMPT == (
        "You grade an output against a rubric. Answer with JSON only: "
        '{"reason": string, "pass": boolean, "score": number between 0 and 1}.'
    )
    assert grading_message("out", "rub") == "<Output>\nout\n</Output>\n<Rubric>\nrub\n</Rubric>"


def test_a_consistent_judge_passes_when_rubric_words_are_present_and_repeats_agree(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    rubric = (
        "States the refund deadline of thirty days"  # terms: states refund deadline thirty days
    )
    found = grade(client, "Your refund is possible within thirty days.", rubric)
    assert found["pass"] is True
    assert found["score"] == pytest.approx(3 / 5)  # refund, thirty, days
    assert isinstance(found["reason"], str) and found["reason"]
    missing = grade(client, "Bikes have two wheels.", rubric)
    assert missing["pass"] is False
    assert missing["score"] == 0
    repeats = [
        grade(client, "Your refund is possible within thirty days.", rubric) for _ in range(5)
    ]
    assert all(verdict == found for verdict in repeats)
    # Short words and stop words of the rubric do not count.
    assert grade(client, "the and of it is", "the and of it is")["pass"] is False


def test_a_random_judge_disagrees_with_itself_across_repeats(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    fake.configure(judge="random")
    verdicts = [
        grade(client, "Your refund arrives soon.", "Mentions the refund") for _ in range(50)
    ]
    passes = [verdict["pass"] for verdict in verdicts]
    assert 0 < sum(passes) < 50
    assert all((v["score"] >= 0.5) == v["pass"] and 0 <= v["score"] <= 1 for v in verdicts)

    def ten_verdicts() -> list[bool]:
        return [
            grade(client, "Your refund arrives.", "Mentions the refund")["pass"] for _ in range(10)
        ]

    fake.configure(seed=3)
    replay = ten_verdicts()
    fake.configure(seed=3)  # restarts the coin's generator
    assert ten_verdicts() == replay


# JSON output


SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "labels": {"type": "array", "items": {"$ref": "#/$defs/label"}},
        "urgent": {"type": "boolean"},
        "priority": {"enum": ["low", "high"]},
    },
    "required": ["summary", "confidence", "labels", "urgent", "priority"],
    "$defs": {"label": {"type": "string"}},
}


def ask_json(client: openai.OpenAI, content: str) -> Any:
    return ask(
        client,
        content,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "triage", "schema": SCHEMA},
        },
    )


def test_a_json_schema_request_gets_json_that_follows_the_schema(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    value = json.loads(
        ask_json(client, "Triage this ticket about a late refund").choices[0].message.content
    )
    assert set(value) == set(SCHEMA["properties"])
    assert isinstance(value["summary"], str) and value["summary"]
    assert 0 <= value["confidence"] <= 1
    assert value["labels"] and all(isinstance(label, str) for label in value["labels"])
    assert isinstance(value["urgent"], bool)
    assert value["priority"] in ("low", "high")
    json_object = ask(client, "Say hi", response_format={"type": "json_object"})
    assert isinstance(json.loads(json_object.choices[0].message.content), dict)


def test_json_break_rate_and_json_output_off_give_unparseable_answers(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    fake.configure(json_break_rate=1.0)
    with pytest.raises(json.JSONDecodeError):
        json.loads(ask_json(client, "Triage this ticket").choices[0].message.content)
    fake.configure(json_break_rate=0.0, json_output=False)
    with pytest.raises(json.JSONDecodeError):
        json.loads(ask_json(client, "Triage this ticket").choices[0].message.content)


def test_a_refused_structured_output_request_reports_the_refusal_in_its_own_field(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    fake.configure(refusal_rate=1.0)
    message = ask_json(client, "Triage this ticket").choices[0].message
    assert message.content is None
    assert message.refusal == REFUSAL


# Errors and latency


def test_error_rate_answers_429_and_500_in_openais_error_shape(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    fake.configure(error_rate=1.0)
    statuses = []
    for index in range(20):
        with pytest.raises(openai.APIStatusError) as caught:
            ask(client, prompt(index))
        error = caught.value
        assert isinstance(error.body, dict) and error.body["message"]
        statuses.append(error.status_code)
    assert set(statuses) == {429, 500}


def test_injected_errors_are_transient_so_a_retrying_client_gets_through(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    fake.configure(error_rate=0.5)
    outcomes = []
    for index in range(40):
        try:
            ask(client, prompt(index))
            outcomes.append(True)
        except (openai.RateLimitError, openai.InternalServerError):
            outcomes.append(False)
    low, high = stats.binom.interval(1 - 1e-6, 40, 0.5)
    assert low <= outcomes.count(False) <= high
    with openai.OpenAI(base_url=fake.base_url, api_key="unused", max_retries=8) as patient:
        answers = [ask(patient, prompt(i)).choices[0].message.content for i in range(10)]
    assert all(answers)


def test_latency_ms_delays_every_answer(fake: FakeLLMServer, client: openai.OpenAI) -> None:
    fake.configure(latency_ms=150)
    started = time.perf_counter()
    ask(client, prompt(1))
    assert time.perf_counter() - started >= 0.15


def test_a_bad_body_is_a_400_naming_the_field(fake: FakeLLMServer, client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=messages)
    body: Any = caught.value.body
    assert body["param"] == "messages[1].role"
    assert "robot" in body["message"]
    response = httpx.post(f"{fake.base_url}/chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    surrogate = b'{"model": "m", "messages": [{"role": "user", "content": "a \\ud800"}]}'
    response = httpx.post(f"{fake.base_url}/chat/completions", content=surrogate)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages[0].content"
    with pytest.raises(openai.BadRequestError, match="input"):
        client.embeddings.create(model="fake-embedding", input=[])


def test_an_unknown_path_is_a_404_in_openais_error_shape(fake: FakeLLMServer) -> None:
    response = httpx.get(f"{fake.base_url}/assistants")
    assert response.status_code == 404
    assert "/v1/assistants" in response.json()["error"]["message"]


def test_models_are_listed_and_requests_are_counted(
    fake: FakeLLMServer, client: openai.OpenAI
) -> None:
    before = fake.requests
    ids = [model.id for model in client.models.list()]
    ask(client, "hello")
    assert "fake-model" in ids
    assert fake.requests == before + 2


# Knobs


def test_configure_over_http_changes_behaviour(fake: FakeLLMServer, client: openai.OpenAI) -> None:
    config_url = fake.base_url.removesuffix("/v1") + "/_fake/config"
    assert httpx.get(config_url).json()["refusal_rate"] == 0
    assert ask(client, prompt(2)).choices[0].message.content != REFUSAL
    changed = httpx.post(config_url, json={"refusal_rate": 1, "verbosity": 2})
    assert changed.status_code == 200
    assert changed.json()["refusal_rate"] == 1
    assert httpx.get(config_url).json()["verbosity"] == 2
    assert fake.knobs.refusal_rate == 1
    assert ask(client, prompt(2)).choices[0].message.content == REFUSAL


@pytest.mark.parametrize(
    ("knobs", "named"),
    [
        ({"latency_ms": -5}, ["latency_ms", "-5", "[0, 600000]"]),
        ({"refusal_rate": 1.5}, ["refusal_rate", "1.5", "[0, 1]"]),
        ({"judge": "lenient"}, ["judge", "lenient", "'consistent' or 'random'"]),
        ({"verbosity": 0}, ["verbosity", "0", "(0, 100]"]),
        ({"seed": "abc"}, ["seed", "abc", "integer"]),
        ({"chattiness": 2}, ["chattiness", "known knobs", "verbosity"]),
    ],
)
def test_a_bad_knob_is_a_clear_error_naming_it(knobs: dict[str, Any], named: list[str]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        FakeLLMServer(**knobs)
    for part in named:
        assert part in str(caught.value)


def test_a_bad_knob_over_http_is_a_400_and_changes_nothing(fake: FakeLLMServer) -> None:
    config_url = fake.base_url.removesuffix("/v1") + "/_fake/config"
    response = httpx.post(config_url, json={"verbosity": 2, "error_rate": -0.1})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "error_rate"
    assert "-0.1" in error["message"] and "[0, 1]" in error["message"]
    assert fake.knobs.verbosity == 1
    with pytest.raises(InvalidInputError, match="json_output"):
        fake.configure(json_output="yes")


# Steward's own provider, end to end


def test_the_openai_provider_completes_against_the_fake(fake: FakeLLMServer) -> None:
    fake.configure(cached_ratio=0.5, latency_ms=20)
    provider = OpenAIProvider(base_url=fake.base_url, model="fake-model")
    messages = [{"role": "user", "content": "Which plans include priority support for teams?"}]
    answer = provider.complete(ChatRequest(messages=messages))
    assert "priority" in answer.text
    assert answer.input_tokens == expected_tokens(7, Fraction(4, 3))
    assert answer.cached_input_tokens == math.floor(answer.input_tokens * 0.5) > 0
    assert answer.output_tokens == expected_tokens(len(answer.text.split()), Fraction(4, 3))
    assert answer.latency_ms >= 20
    assert answer.finish_reason == "stop"
    assert answer.model == "fake-model"
    structured = provider.complete(ChatRequest(messages=messages, output_schema=SCHEMA))
    assert set(json.loads(structured.text)) == set(SCHEMA["properties"])
    vectors = provider.embed(["priority support", "priority support plans", "whale song"])
    assert np.dot(vectors[0], vectors[1]) > np.dot(vectors[0], vectors[2])


def test_the_openai_provider_returns_a_structured_refusal_as_its_text(fake: FakeLLMServer) -> None:
    fake.configure(refusal_rate=1.0)
    provider = OpenAIProvider(base_url=fake.base_url, model="fake-model")
    messages = [{"role": "user", "content": "Triage this ticket"}]
    answer = provider.complete(ChatRequest(messages=messages, output_schema=SCHEMA))
    assert answer.text == REFUSAL


def test_the_openai_provider_raises_provider_error_when_the_server_is_gone() -> None:
    with FakeLLMServer() as gone:
        provider = OpenAIProvider(base_url=gone.base_url, model="fake-model", max_retries=0)
        assert provider.complete(ChatRequest(messages=[{"role": "user", "content": "hi"}])).text
    with pytest.raises(ProviderError, match="did not answer"):
        provider.complete(ChatRequest(messages=[{"role": "user", "content": "hi"}]))


# The command line


def test_the_command_runs_the_fake_in_the_foreground_and_prints_its_url() -> None:
    command = [sys.executable, "-m", "steward.testing.fake_llm", "--port", "0", "--seed", "4"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = re.search(r"http://127\.0\.0\.1:\d+/v1", line)
        assert base_url, line
        config = httpx.get(base_url.group(0).removesuffix("/v1") + "/_fake/config").json()
        assert config["seed"] == 4
        assert httpx.get(base_url.group(0) + "/models").status_code == 200
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert process.returncode == 0


def test_the_command_refuses_a_bad_knob_in_one_line() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "steward.testing.fake_llm", "--port", "0", "--refusal-rate", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.returncode == 2
    assert "refusal_rate" in completed.stderr and "[0, 1]" in completed.stderr
    assert "Traceback" not in completed.stderr
