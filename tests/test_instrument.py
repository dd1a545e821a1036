"""The openai wrapper end to end: the official client against the shipped fake LLM, its calls
logged to a real ``steward serve`` and read back from its event log.

Expected tokens are derived here from the fake's knobs and the texts (words counted with
``str.split``, tokens with exact fractions), and expected costs from the ``prices:`` below by hand,
never from the code under test.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import httpx
import openai
import pydantic
import pytest
import uvicorn
import yaml
from click.testing import CliRunner
from openai.types.chat import ChatCompletionMessageParam
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from steward.cli.main import cli
from steward.client import BatchingLogger, Client
from steward.errors import InvalidInputError
from steward.llm import instrument
from steward.testing import FakeLLMServer, Knobs

from .conftest import Server

SYSTEM = "support"
TOKENS_PER_WORD = Fraction(4, 3)  # the fake's default
#: Dollars per million tokens, as steward.yaml declares them below.
INPUT, CACHED_INPUT, OUTPUT = Fraction(1), Fraction(1, 2), Fraction(2)
PROMPT_FILE = """\
description: Answer a support question.
model: fake-model
variables: [question]
messages:
  - role: user
    content: "{{ question }}"
"""


def workspace_config() -> str:
    prices = [{"valid_from": "2026-01-01", "input": 1.0, "cached_input": 0.5, "output": 2.0}]
    system = {
        "name": SYSTEM,
        "task": "llm",
        "owner": "support@example.com",
        "prompts": [{"name": "answer", "file": "prompts/answer.yaml"}],
        "prices": {"fake-model": prices},
    }
    return yaml.safe_dump({"version": 1, "systems": [system]})


@pytest.fixture(scope="module")
def steward_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("instrument") / "ws"
    (root / "prompts").mkdir(parents=True)
    (root / "steward.yaml").write_text(workspace_config())
    (root / "prompts" / "answer.yaml").write_text(PROMPT_FILE)
    database_url = f"sqlite:///{root / 'store.db'}"
    base = ["--workspace", str(root), "--database-url", database_url, "--user", "ci"]
    for args in (["init"], ["apply"], ["prompts", "label", SYSTEM, "answer", "staging", "1"]):
        result = CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    server = Server(root, database_url)
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(seed=11) as running:
        yield running


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """The shared fake with every knob at its default, before and after the test."""
    defaults = Knobs().to_dict()
    fake_server.configure(**defaults)
    yield fake_server
    fake_server.configure(**defaults)


@pytest.fixture
def llm(fake: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key="unused", max_retries=0) as made:
        yield made


@pytest.fixture
def steward(steward_server: Server) -> Iterator[Client]:
    with Client(steward_server.url, timeout=30) as made:
        yield made


def logged_calls(server: Server) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.url}/v1/systems/{SYSTEM}/llm-calls", params={"limit": 10_000})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["calls"])


def the_call(server: Server, question: str) -> dict[str, Any]:
    """The one logged call whose input holds ``question`` (each test asks its own questions)."""
    found = [call for call in logged_calls(server) if question in (call["input_text"] or "")]
    assert len(found) == 1, [call["input_text"] for call in found]
    return found[0]


def tokens(words: int) -> int:
    return math.ceil(words * TOKENS_PER_WORD)


def expected_usage(question: str, answer: str, *, cached_ratio: float, reasoning: int) -> dict:
    given = tokens(len(question.split()))
    cached = math.floor(given * cached_ratio)
    return {
        "input_tokens": given,
        "cache_read_tokens": cached,
        "cache_creation_tokens": 0,
        "output_tokens": tokens(len(answer.split())) + reasoning,
        "reasoning_tokens": reasoning,
    }


def hand_cost(usage: dict[str, int]) -> float:
    uncached = usage["input_tokens"] - usage["cache_read_tokens"]
    dollars = (
        uncached * INPUT
        + usage["cache_read_tokens"] * CACHED_INPUT
        + usage["output_tokens"] * OUTPUT
    )
    return float(dollars / 1_000_000)


def ask(question: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": question}]


def check_logged(
    server: Server, question: str, answer: str, *, finish: str = "stop", streamed: bool
) -> dict[str, Any]:
    """The one call logged for ``question``, checked against the fake's knobs (cached_ratio 0.5,
    reasoning_tokens 7, latency_ms 40) and the prices; returned for further checks."""
    call = the_call(server, question)
    usage = expected_usage(question, answer, cached_ratio=0.5, reasoning=7)
    assert {key: call[key] for key in usage} == usage, question
    assert call["cost"] == pytest.approx(hand_cost(usage), rel=1e-9, abs=1e-12)
    assert call["priced"] is True
    assert call["output_text"] == answer
    assert call["input_text"] == f"user: {question}"
    assert call["request_model"] == call["response_model"] == "fake-model"
    assert call["provider"] == "" and call["operation"] == "chat" and call["error"] is None
    assert json.loads(call["finish_reasons"]) == [finish]
    assert call["latency_ms"] >= 40  # the fake waited 40 ms before answering
    if streamed:  # the first chunk came after the wait, before the end
        assert 40 <= call["ttft_ms"] <= call["latency_ms"]
    else:
        assert call["ttft_ms"] is None
    return call


@pytest.fixture
def knobs(fake: FakeLLMServer) -> FakeLLMServer:
    fake.configure(cached_ratio=0.5, reasoning_tokens=7, latency_ms=40)
    return fake


def test_whole_chat_calls_are_logged_once_with_the_fakes_usage_cost_and_prompt(
    knobs: FakeLLMServer, llm: openai.OpenAI, steward: Client, steward_server: Server
) -> None:
    fetched = steward.prompt("answer", label="staging", system=SYSTEM)
    first, second = "Where is my parcel number one today?", "Can I change my billing date?"
    with instrument(llm, system=SYSTEM, steward=steward, prompt="default-prompt") as calls:
        whole = llm.chat.completions.create(
            model="fake-model",
            messages=ask(first),
            steward_prompt=fetched,  # type: ignore[call-overload]  # not in openai's signature
        )
        # A copy made with with_options is logged too; a cut answer ends with "length".
        cut = llm.with_options(timeout=30).chat.completions.create(
            model="fake-model", messages=ask(second), max_completion_tokens=6
        )
    assert (calls.sent, calls.failed, calls.dropped) == (2, 0, 0)
    logged = check_logged(
        steward_server, first, whole.choices[0].message.content or "", streamed=False
    )
    # The call's own prompt wins over instrument's: the version the client fetched.
    assert (logged["prompt"], logged["prompt_version"]) == (fetched.name, fetched.version)
    assert fetched.version == 1
    other = check_logged(
        steward_server,
        second,
        cut.choices[0].message.content or "",
        finish="length",
        streamed=False,
    )
    assert (other["prompt"], other["prompt_version"]) == ("default-prompt", None)


def test_streamed_chat_calls_are_logged_once_and_callers_see_the_chunks_they_asked_for(
    knobs: FakeLLMServer, llm: openai.OpenAI, steward: Client, steward_server: Server
) -> None:
    plain, asking, helped = (
        "Why was my invoice higher than last month?",
        "How do I reset the password of my account?",
        "When does the warranty on my router end?",
    )
    with instrument(llm, system=SYSTEM, steward=steward, prompt="default-prompt") as calls:
        # A caller that did not ask for usage sees the chunks it would see unwrapped: none
        # without choices, no usage; the wrapper asked for usage all the same.
        chunks = list(
            llm.chat.completions.create(model="fake-model", messages=ask(plain), stream=True)
        )
        assert chunks and all(chunk.choices and chunk.usage is None for chunk in chunks)
        # A caller that asked for it gets its usage chunk, last, as unwrapped.
        asked = list(
            llm.chat.completions.create(
                model="fake-model",
                messages=ask(asking),
                stream=True,
                stream_options={"include_usage": True},
                steward_prompt=None,  # type: ignore[call-overload]
            )
        )
        assert asked[-1].choices == [] and asked[-1].usage is not None
        # The stream helper goes through create, so it is logged once, with its usage.
        with llm.chat.completions.stream(model="fake-model", messages=ask(helped)) as helper:
            final = helper.get_final_completion()
    assert (calls.sent, calls.failed, calls.dropped) == (3, 0, 0)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert check_logged(steward_server, plain, text, streamed=True)["prompt"] == "default-prompt"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in asked if chunk.choices)
    assert check_logged(steward_server, asking, text, streamed=True)["prompt"] is None
    check_logged(steward_server, helped, final.choices[0].message.content or "", streamed=True)


def test_an_error_from_openai_is_logged_and_reraised_unchanged(
    llm: openai.OpenAI, steward: Client, steward_server: Server
) -> None:
    question = "Does the fake refuse a max_completion_tokens of zero?"
    with instrument(llm, system=SYSTEM, steward=steward) as calls:
        with pytest.raises(openai.BadRequestError) as raised:
            llm.chat.completions.create(
                model="fake-model", messages=ask(question), max_completion_tokens=0
            )
        # The same call unwrapped raises the same error.
        with (
            openai.OpenAI(base_url=str(llm.base_url), api_key="unused", max_retries=0) as plain,
            pytest.raises(openai.BadRequestError) as unwrapped,
        ):
            plain.chat.completions.create(
                model="fake-model", messages=ask(question), max_completion_tokens=0
            )
    assert type(raised.value) is type(unwrapped.value)
    assert raised.value.status_code == unwrapped.value.status_code == 400
    assert raised.value.body == unwrapped.value.body
    assert calls.sent == 1
    call = the_call(steward_server, question)
    assert call["error"] == f"BadRequestError: {raised.value}"
    assert call["input_tokens"] == call["output_tokens"] == 0
    assert call["request_model"] == "fake-model" and call["response_model"] is None


def test_a_stream_closed_early_is_logged_at_close(
    llm: openai.OpenAI, steward: Client, steward_server: Server
) -> None:
    finished, cut = "Where do I return a broken kettle please?", "Which courier delivers my parcel?"
    with instrument(llm, system=SYSTEM, steward=steward) as calls:
        # Stops at the finish reason, before the usage chunk the wrapper asked for: the wrapper
        # reads that chunk after close, off the caller's thread, and the call is whole.
        stream = llm.chat.completions.create(
            model="fake-model", messages=ask(finished), stream=True
        )
        text = ""
        for chunk in stream:
            text += chunk.choices[0].delta.content or ""
            if chunk.choices[0].finish_reason:
                break
        stream.close()
        # Closed after two chunks: logged with what arrived and an error that says so.
        with llm.chat.completions.create(
            model="fake-model", messages=ask(cut), stream=True
        ) as early:
            first_two = [next(early), next(early)]
    assert calls.sent == 2
    whole = the_call(steward_server, finished)
    assert whole["error"] is None and whole["output_text"] == text
    usage = expected_usage(finished, text, cached_ratio=0, reasoning=0)
    assert {key: whole[key] for key in usage} == usage
    partial = the_call(steward_server, cut)
    assert "closed by the caller before it ended" in partial["error"]
    assert partial["output_text"] == "".join(c.choices[0].delta.content or "" for c in first_two)
    assert partial["output_tokens"] == 0 and json.loads(partial["finish_reasons"]) == []


def test_a_stopped_steward_server_adds_no_wait_and_drops_what_does_not_fit(
    llm: openai.OpenAI, steward_server: Server
) -> None:
    """SIGSTOP: the server accepts connections and never answers, the worst case for a sender."""
    assert steward_server.process is not None
    questions = [f"Is order {index} of the stopped-server test on its way?" for index in range(30)]
    with Client(steward_server.url, timeout=10) as steward:
        calls = instrument(llm, system=SYSTEM, steward=steward, batch_size=1, max_queue=4)
        steward_server.process.send_signal(signal.SIGSTOP)
        try:
            took = []
            for question in questions:
                started = time.perf_counter()
                llm.chat.completions.create(model="fake-model", messages=ask(question))
                took.append(time.perf_counter() - started)
            # Had any call waited on Steward, it would have taken the client's 10 s timeout.
            assert max(took) < 2.0 and sum(took) < 8.0
            assert calls.dropped >= len(questions) - 1 - 4  # one in flight, four queued
        finally:
            steward_server.process.send_signal(signal.SIGCONT)
        calls.close(timeout=60)
    assert calls.sent + calls.failed + calls.dropped == len(questions)
    stored = [
        c for c in logged_calls(steward_server) if "stopped-server test" in (c["input_text"] or "")
    ]
    assert len(stored) == calls.sent and len({c["input_text"] for c in stored}) == calls.sent


def test_the_async_client_is_logged_the_same_way(
    fake: FakeLLMServer, steward: Client, steward_server: Server
) -> None:
    fake.configure(cached_ratio=0.25, reasoning_tokens=3)
    whole_question, streamed_question = "Async: what is my balance?", "Async: what is my plan?"
    stopped_question, texts = "Async: when is my next bill due?", list[str]()

    async def run() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="unused") as llm:
            with instrument(llm, system=SYSTEM, steward=steward) as calls:
                whole = await llm.chat.completions.create(
                    model="fake-model", messages=ask(whole_question)
                )
                stream = await llm.chat.completions.create(
                    model="fake-model", messages=ask(streamed_question), stream=True
                )
                chunks = [chunk async for chunk in stream]
                assert all(chunk.choices for chunk in chunks)
                # Stopped at the finish reason and closed: close reads the usage chunk.
                stopped = await llm.chat.completions.create(
                    model="fake-model", messages=ask(stopped_question), stream=True
                )
                async for chunk in stopped:
                    texts.append(chunk.choices[0].delta.content or "")
                    if chunk.choices[0].finish_reason:
                        break
                await stopped.close()
            assert (calls.sent, calls.dropped) == (3, 0)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
        return whole.choices[0].message.content or "", text

    answers = dict(zip((whole_question, streamed_question), asyncio.run(run()), strict=True))
    answers[stopped_question] = "".join(texts)
    for question, answer in answers.items():
        call = the_call(steward_server, question)
        usage = expected_usage(question, answer, cached_ratio=0.25, reasoning=3)
        assert {key: call[key] for key in usage} == usage
        assert call["output_text"] == answer
        assert call["cost"] == pytest.approx(hand_cost(usage), rel=1e-9, abs=1e-12)


class Verdict(pydantic.BaseModel):
    answer: str


def test_parse_is_logged_and_text_false_keeps_the_texts_here(
    fake: FakeLLMServer, llm: openai.OpenAI, steward: Client, steward_server: Server
) -> None:
    question = "Parse: is my refund approved?"
    before = {call["id"] for call in logged_calls(steward_server)}
    with instrument(llm, system=SYSTEM, steward=steward, text=False, prompt="parsed") as calls:
        parsed = llm.chat.completions.parse(
            model="fake-model",
            messages=ask(question),
            response_format=Verdict,
        )
    assert parsed.choices[0].message.parsed is not None and calls.sent == 1
    (call,) = [c for c in logged_calls(steward_server) if c["id"] not in before]
    assert call["input_text"] is None and call["output_text"] is None
    assert call["prompt"] == "parsed" and parsed.usage is not None
    assert call["input_tokens"] == tokens(len(question.split()))
    assert call["output_tokens"] == parsed.usage.completion_tokens


def test_bad_arguments_are_refused_and_close_unpatches_the_client(
    llm: openai.OpenAI, steward: Client
) -> None:
    with pytest.raises(InvalidInputError, match=r"openai.OpenAI or openai.AsyncOpenAI .* got str"):
        instrument("not a client", system=SYSTEM, steward=steward)  # type: ignore[type-var]
    with pytest.raises(InvalidInputError, match=r"steward= takes a steward.Client, got str"):
        instrument(llm, system=SYSTEM, steward="http://127.0.0.1:1")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="steward_prompt takes"):
        instrument(llm, system=SYSTEM, steward=steward, prompt=3)  # type: ignore[arg-type]
    with instrument(llm, system=SYSTEM, steward=steward) as calls:
        with pytest.raises(InvalidInputError, match="already instrumented"):
            instrument(llm, system=SYSTEM, steward=steward)
        with pytest.raises(InvalidInputError, match="steward_prompt takes .* got dict"):
            llm.chat.completions.create(
                model="fake-model",
                messages=ask("hi"),
                steward_prompt={"name": "x"},  # type: ignore[call-overload]
            )
    assert calls.sent == 0  # a refused argument never reached openai, so nothing to log
    assert "create" not in vars(llm.chat.completions) and "copy" not in vars(llm)
    with pytest.raises(TypeError, match="steward_prompt"):  # unpatched: openai's own signature
        llm.chat.completions.create(
            model="fake-model",
            messages=ask("hi"),
            steward_prompt=None,  # type: ignore[call-overload]
        )


# The Responses API. The shipped fake does not serve it, so this in-test fake answers it with the
# shapes of OpenAI's API reference (one message, its usage, and as a stream the events created,
# output_text.delta and completed); the usage it reports is fixed here, and checked against what
# is logged.

RESPONSE_WORDS = ["Your", "parcel", "left", "the", "depot", "today."]
RESPONSE_USAGE: dict[str, Any] = {
    "input_tokens": 120,
    "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 0},
    "output_tokens": 50,
    "output_tokens_details": {"reasoning_tokens": 30},
    "total_tokens": 170,
}


def response_body(status: str) -> dict[str, Any]:
    text = " ".join(RESPONSE_WORDS)
    message = {
        "type": "message",
        "id": "msg_1",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    done = status == "completed"
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1_767_225_600,
        "status": status,
        "model": "fake-model",
        "output": [message] if done else [],
        "usage": RESPONSE_USAGE if done else None,
        "error": None,
        "incomplete_details": None,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


async def responses_endpoint(request: Request) -> Response:
    body = await request.json()
    if not body.get("stream"):
        return JSONResponse(response_body("completed"))

    async def events() -> Any:
        sent: list[dict[str, Any]] = [
            {"type": "response.created", "response": response_body("in_progress")}
        ]
        for index, word in enumerate(RESPONSE_WORDS):
            delta = word if index == 0 else f" {word}"
            sent.append({"type": "response.output_text.delta", "item_id": "msg_1",
                         "output_index": 0, "content_index": 0, "delta": delta})  # fmt: skip
        sent.append({"type": "response.completed", "response": response_body("completed")})
        for number, event in enumerate(sent):
            data = json.dumps({**event, "sequence_number": number})
            yield f"event: {event['type']}\ndata: {data}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture
def responses_fake() -> Iterator[str]:
    app = Starlette(routes=[Route("/v1/responses", responses_endpoint, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the Responses fake did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=30)


def test_responses_calls_whole_and_streamed_are_logged_with_their_usage(
    responses_fake: str, steward: Client, steward_server: Server
) -> None:
    whole_input, streamed_input = "Responses: where is my parcel?", "Responses: and now?"
    with (
        openai.OpenAI(base_url=responses_fake, api_key="unused", max_retries=0) as llm,
        instrument(llm, system=SYSTEM, steward=steward) as calls,
    ):
        whole = llm.responses.create(
            model="fake-model", input=whole_input, instructions="Be brief."
        )
        events = list(llm.responses.create(model="fake-model", input=streamed_input, stream=True))
    assert whole.output_text == " ".join(RESPONSE_WORDS) and len(events) == 8
    assert calls.sent == 2
    usage = {
        "input_tokens": 120,
        "cache_read_tokens": 100,
        "cache_creation_tokens": 0,
        "output_tokens": 50,
        "reasoning_tokens": 30,
    }
    for question in (whole_input, streamed_input):
        call = the_call(steward_server, question)
        assert {key: call[key] for key in usage} == usage
        assert call["cost"] == pytest.approx(hand_cost(usage), rel=1e-9, abs=1e-12)
        assert call["output_text"] == " ".join(RESPONSE_WORDS)
        assert json.loads(call["finish_reasons"]) == ["stop"]
    assert the_call(steward_server, whole_input)["input_text"] == (
        f"system: Be brief.\nuser: {whole_input}"
    )
    assert the_call(steward_server, streamed_input)["ttft_ms"] is not None


def test_the_batching_logger_refuses_a_kind_of_record_it_cannot_send(steward: Client) -> None:
    with pytest.raises(
        InvalidInputError, match=r"records must be one of 'predictions', 'llm_calls'"
    ):
        BatchingLogger(steward, SYSTEM, records="prompts")  # type: ignore[arg-type]
