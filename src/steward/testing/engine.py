"""The fake LLM without HTTP: knobs in, answers, verdicts, embeddings and injected errors out.

An answer depends only on the seed, the model, the messages and the knobs. Two draws are per call
instead, so that repeats differ where a real service's would: the random judge's coin (one
generator seeded by ``seed``, advanced by every grading request) and injected errors (drawn from
the request and how many times it was seen, so a retry can succeed).

>>> fake = FakeLLM(seed=1)
>>> body = ChatBody(model="fake-model", messages=[{"role": "user", "content": "Name a colour"}])
>>> fake.chat(body) == fake.chat(body)
True
>>> fake.chat(body).usage.prompt  # 3 words at 4/3 tokens a word
4
"""

from __future__ import annotations

import json
import math
import random
import threading
from typing import Any

from steward.testing.answers import (
    REFUSAL,
    break_json,
    compose_answer,
    count_tokens,
    count_words,
    fraction,
    instance_of,
    request_key,
    truncate_to_tokens,
)
from steward.testing.embeddings import embed_text, encode_base64
from steward.testing.judge import grade_consistently, grade_randomly, parse_grading_request
from steward.testing.knobs import Knobs
from steward.testing.protocol import ChatAnswer, ChatBody, EmbeddingsBody, FakeAPIError, Usage

__all__ = ["FakeLLM"]

#: How many distinct requests the error draws remember before starting afresh.
_MEMORY = 100_000


class FakeLLM:
    """The fake's state: its knobs, the random judge's generator and the error draws' memory.

    Safe to configure from one thread while another answers; each answer reads one snapshot of
    the knobs.
    """

    def __init__(self, **knobs: Any) -> None:
        self._lock = threading.Lock()
        self._knobs = Knobs().updated(knobs)
        self._judge = random.Random(self._knobs.seed)
        self._attempts: dict[bytes, int] = {}
        self._requests = 0
        #: Knobs for one model only (``configure(model=...)``), e.g. a new model that rambles.
        self._models: dict[str, Knobs] = {}

    @property
    def knobs(self) -> Knobs:
        """The knobs now in force."""
        return self._knobs

    @property
    def requests(self) -> int:
        """How many API requests (``/v1/...``) were served, errors included."""
        return self._requests

    def count_request(self) -> None:
        """Count one served API request."""
        with self._lock:
            self._requests += 1

    def configure(self, *, model: str | None = None, **knobs: Any) -> Knobs:
        """Change knobs (validated, all or none); giving ``seed`` restarts the per-call draws.

        With ``model``, the change applies to requests for that model only, on top of the
        knobs in force for every model now; ``configure(model=name)`` with no knob drops them.

        >>> FakeLLM().configure(verbosity=2).verbosity
        2.0
        >>> fake = FakeLLM()
        >>> fake.configure(model="big", verbosity=3).verbosity, fake.knobs.verbosity
        (3.0, 1.0)
        """
        with self._lock:
            if model is not None:
                if not knobs:
                    self._models.pop(model, None)
                    return self._knobs
                self._models[model] = self._models.get(model, self._knobs).updated(knobs)
                return self._models[model]
            self._knobs = self._knobs.updated(knobs)
            if "seed" in knobs:
                self._judge = random.Random(self._knobs.seed)
                self._attempts.clear()
            return self._knobs

    def knobs_for(self, model: str) -> Knobs:
        """The knobs a request for ``model`` is answered with."""
        return self._models.get(model, self._knobs)

    def chat(self, body: ChatBody, knobs: Knobs | None = None) -> ChatAnswer:
        """The answer to a chat request, or ``FakeAPIError`` when ``error_rate`` strikes."""
        knobs = knobs or self.knobs_for(body.model)
        key = request_key(knobs.seed, body.model, body.messages)
        self._maybe_fail(key, knobs, body.model)
        prompt = count_tokens(
            sum(count_words(m["content"]) for m in body.messages), knobs.tokens_per_word
        )
        refused = fraction(key, "refusal") < knobs.refusal_rate
        structured = body.response_format == "json_schema" and knobs.json_output
        text = REFUSAL if refused else self._content(body, key, knobs)
        finish_reason = "stop"
        if body.max_tokens is not None:
            cut = truncate_to_tokens(text, body.max_tokens, knobs.tokens_per_word)
            if cut is not None:
                text, finish_reason = cut, "length"
        usage = Usage(
            prompt=prompt,
            completion=count_tokens(count_words(text), knobs.tokens_per_word)
            + knobs.reasoning_tokens,
            cached=math.floor(prompt * knobs.cached_ratio),
            reasoning=knobs.reasoning_tokens,
        )
        if refused and structured:  # structured outputs report a refusal in its own field
            return ChatAnswer(content=None, refusal=text, usage=usage, finish_reason=finish_reason)
        return ChatAnswer(content=text, usage=usage, finish_reason=finish_reason)

    def embed(self, body: EmbeddingsBody, knobs: Knobs | None = None) -> tuple[list[Any], int]:
        """The vectors of ``body.texts`` (base64 strings when asked) and the prompt tokens."""
        knobs = knobs or self._knobs
        key = request_key(
            knobs.seed, body.model, [{"role": "input", "content": t} for t in body.texts]
        )
        self._maybe_fail(key, knobs, body.model)
        vectors = [embed_text(t, seed=knobs.seed, dimensions=body.dimensions) for t in body.texts]
        tokens = count_tokens(sum(count_words(t) for t in body.texts), knobs.tokens_per_word)
        if body.encoding_format == "base64":
            return [encode_base64(vector) for vector in vectors], tokens
        return list(vectors), tokens

    def _content(self, body: ChatBody, key: bytes, knobs: Knobs) -> str:
        grading = parse_grading_request(body.messages)
        if grading is not None:
            if knobs.judge == "random":
                with self._lock:
                    verdict = grade_randomly(self._judge)
            else:
                verdict = grade_consistently(*grading)
            return self._maybe_break(json.dumps(verdict), key, knobs)
        users = [m["content"] for m in body.messages if m["role"] == "user"]
        prose = compose_answer(
            users[-1] if users else body.messages[-1]["content"], key, knobs.verbosity
        )
        if body.response_format == "text" or not knobs.json_output:
            return prose
        if body.response_format == "json_object":
            return self._maybe_break(json.dumps({"answer": prose}), key, knobs)
        sentences = [s.strip() + "." for s in prose.rstrip(".").split(". ") if s.strip()]
        value = instance_of(body.schema or {}, sentences, key)
        return self._maybe_break(json.dumps(value), key, knobs)

    @staticmethod
    def _maybe_break(text: str, key: bytes, knobs: Knobs) -> str:
        return break_json(text) if fraction(key, "json_break") < knobs.json_break_rate else text

    def _maybe_fail(self, key: bytes, knobs: Knobs, model: str) -> None:
        if knobs.error_rate == 0:
            return
        with self._lock:
            if len(self._attempts) >= _MEMORY:
                self._attempts.clear()
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
        drawn = key + attempt.to_bytes(8, "big")
        if fraction(drawn, "error") >= knobs.error_rate:
            return
        if fraction(drawn, "status") < 0.5:
            raise FakeAPIError(
                429,
                f"Rate limit reached for {model} (the fake's error_rate knob); retry shortly.",
                kind="requests",
                code="rate_limit_exceeded",
            )
        raise FakeAPIError(
            500,
            "The server had an error while processing your request (the fake's error_rate knob).",
            kind="server_error",
        )
