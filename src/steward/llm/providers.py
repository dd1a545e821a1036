"""Providers: what turns a rendered prompt into an answer, with its tokens, latency and cost.

A provider is anything with ``id`` and ``complete(request) -> Completion`` (and, for the ``similar``
assertion, ``embed(texts)``). Steward ships three:

- ``EchoProvider`` (promptfoo's ``echo``): the answer is the rendered prompt itself, which tests a
  template with no model at all;
- ``OpenAIProvider``: the official ``openai`` package pointed at any OpenAI-compatible base URL;
- the fake OpenAI-compatible server in ``steward.testing``, which ``OpenAIProvider`` talks to like any
  other, so tests, the demo and users' CI run with no key and no network.

>>> answer = EchoProvider().complete(ChatRequest(messages=[{"role": "user", "content": "Hi Ada"}]))
>>> answer.text, answer.output_tokens
('Hi Ada', 2)
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from steward.errors import ConfigError, InvalidInputError, StewardError

__all__ = [
    "ChatRequest",
    "Completion",
    "EchoProvider",
    "OpenAIProvider",
    "Provider",
    "ProviderError",
    "make_provider",
]


class ProviderError(StewardError):
    """The provider could not answer (unreachable, refused the key, timed out)."""


@dataclass(frozen=True)
class ChatRequest:
    """A rendered prompt, ready to send: chat messages, the model and its parameters."""

    messages: list[dict[str, str]]
    model: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    #: A JSON schema the answer must follow (sent as a structured-output request when given).
    output_schema: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        """The messages as one text, as promptfoo's ``echo`` provider returns them."""
        return "\n".join(message["content"] for message in self.messages)


@dataclass(frozen=True)
class Completion:
    """One answer, with what it cost. Token counts follow the OpenAI usage fields."""

    text: str
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    #: Part of ``input_tokens`` read from the provider's prompt cache.
    cached_input_tokens: int = 0
    latency_ms: float = 0.0
    #: In US dollars; None when the provider does not say and no price is known.
    cost: float | None = None
    finish_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "latency_ms": self.latency_ms,
            "cost": self.cost,
            "finish_reason": self.finish_reason,
        }


@runtime_checkable
class Provider(Protocol):
    """What the eval runner and the judges call."""

    id: str

    def complete(self, request: ChatRequest) -> Completion: ...


class EchoProvider:
    """Answers with the rendered prompt; tokens are counted as words (promptfoo's ``echo``)."""

    id = "echo"

    def complete(self, request: ChatRequest) -> Completion:
        started = time.perf_counter()
        text = request.text
        return Completion(
            text=text,
            model="echo",
            input_tokens=len(text.split()),
            output_tokens=len(text.split()),
            latency_ms=(time.perf_counter() - started) * 1000,
            cost=0.0,
            finish_reason="stop",
        )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise ProviderError(
            "the echo provider has no embeddings; configure an OpenAI-compatible judge provider "
            "for the 'similar' assertion"
        )


class OpenAIProvider:
    """Chat completions and embeddings through the official ``openai`` package.

    ``base_url`` points at any OpenAI-compatible server (the fake in ``steward.testing``, a local
    vLLM or Ollama, a gateway); without it, ``OPENAI_BASE_URL`` or OpenAI's own. The key comes from
    ``api_key``, else the environment variable named by ``api_key_env`` (``OPENAI_API_KEY``).
    """

    def __init__(
        self,
        *,
        model: str = "",
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 2,
        embedding_model: str = "text-embedding-3-small",
    ) -> None:
        import openai  # imported here: a workspace with no LLM system never pays for it

        key = api_key or os.environ.get(api_key_env)
        if not key and base_url is None and not os.environ.get("OPENAI_BASE_URL"):
            raise ConfigError(
                f"the OpenAI provider needs a key: set {api_key_env}, or give the provider a "
                "base_url (a local OpenAI-compatible server, or steward.testing's fake)"
            )
        self.model = model
        self.embedding_model = embedding_model
        self.id = f"openai:{base_url or os.environ.get('OPENAI_BASE_URL') or 'api.openai.com'}"
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=key or "no-key",
            timeout=timeout,
            max_retries=max_retries,
        )

    def complete(self, request: ChatRequest) -> Completion:
        model = request.model or self.model
        if not model:
            raise InvalidInputError(
                "no model to call: name one in the prompt file (model: ...) or the provider"
            )
        extra: dict[str, Any] = {}
        if request.output_schema is not None:
            extra["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.output_schema},
            }
        started = time.perf_counter()
        try:
            response = self._client.chat.completions.create(
                model=model,
                messages=request.messages,  # type: ignore[arg-type]
                **request.parameters,
                **extra,
            )
        except self._openai.OpenAIError as error:
            raise ProviderError(f"{self.id} did not answer for model {model!r}: {error}") from None
        latency = (time.perf_counter() - started) * 1000
        choice = response.choices[0]
        usage = response.usage
        cached = 0
        if usage is not None and usage.prompt_tokens_details is not None:
            cached = usage.prompt_tokens_details.cached_tokens or 0
        return Completion(
            # A refused structured-output request answers in ``refusal``, with no content.
            text=choice.message.content or choice.message.refusal or "",
            model=response.model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            cached_input_tokens=cached,
            latency_ms=latency,
            finish_reason=choice.finish_reason or "",
        )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        try:
            response = self._client.embeddings.create(model=self.embedding_model, input=list(texts))
        except self._openai.OpenAIError as error:
            raise ProviderError(f"{self.id} gave no embeddings: {error}") from None
        return [list(item.embedding) for item in response.data]


def make_provider(spec: str | dict[str, Any], providers: dict[str, Any] | None = None) -> Any:
    """A provider from its name or mapping, as steward.yaml and promptfoo configurations give it.

    ``echo``; ``openai`` or ``openai:chat:MODEL`` (promptfoo's ids); or a name declared in the
    system's ``providers:`` section (``{kind: openai, base_url: ..., api_key_env: ...}``).
    """
    declared = providers or {}
    if isinstance(spec, dict):
        options = dict(spec)
        name = str(options.pop("id", options.pop("kind", "")))
    else:
        name, options = spec, {}
    if name in declared:
        options = {**declared[name], **options}
        name = str(options.pop("kind", "openai"))
    if name == "echo":
        return EchoProvider()
    if name == "openai" or name.startswith("openai:"):
        parts = name.split(":")
        model = parts[-1] if len(parts) >= 2 else str(options.pop("model", ""))
        config = options.pop("config", {}) or {}
        return OpenAIProvider(
            model=model,
            base_url=options.pop("base_url", None) or config.get("apiBaseUrl"),
            api_key_env=options.pop("api_key_env", "OPENAI_API_KEY"),
        )
    known = ", ".join(["echo", "openai", "openai:chat:MODEL", *sorted(declared)])
    raise ConfigError(f"unknown provider {name!r}; known: {known}")
