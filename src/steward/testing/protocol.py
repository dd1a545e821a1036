"""The OpenAI wire format, as the fake speaks it: request bodies checked field by field, and the
JSON shapes of completions, stream chunks, embeddings, model lists and errors.

A bad body is a ``FakeAPIError`` with status 400 whose ``param`` names the field, answered in
OpenAI's error shape ``{"error": {"message", "type", "param", "code"}}``.

>>> parse_chat_body({"model": "m", "messages": []})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
steward.testing.protocol.FakeAPIError: messages must be a non-empty list of messages, got []; ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steward._util.text import is_valid_text
from steward.errors import StewardError
from steward.testing.embeddings import DEFAULT_DIMENSIONS

__all__ = [
    "MODELS",
    "ChatAnswer",
    "ChatBody",
    "EmbeddingsBody",
    "FakeAPIError",
    "Usage",
    "chunk_bodies",
    "completion_body",
    "embeddings_body",
    "models_body",
    "parse_chat_body",
    "parse_embeddings_body",
]

#: The models ``GET /v1/models`` lists; chat and embeddings accept any model name.
MODELS = ("fake-model", "fake-embedding")
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_FORMATS = ("text", "json_object", "json_schema")
_FINGERPRINT = "fp_steward_fake"


class FakeAPIError(StewardError):
    """An answer in OpenAI's error shape: a bad request (400), or an injected 429 or 500."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """``{"error": {...}}`` as OpenAI sends it."""
        return {
            "error": {
                "message": str(self),
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


def _bad(param: str, message: str) -> FakeAPIError:
    return FakeAPIError(400, message, param=param)


@dataclass(frozen=True)
class ChatBody:
    """A checked ``POST /v1/chat/completions`` body; ``messages`` hold plain-text contents."""

    model: str
    messages: list[dict[str, str]]
    stream: bool = False
    include_usage: bool = False
    #: ``text``, ``json_object`` or ``json_schema``.
    response_format: str = "text"
    schema: dict[str, Any] | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class EmbeddingsBody:
    """A checked ``POST /v1/embeddings`` body: one text per input."""

    model: str
    texts: list[str]
    encoding_format: str = "float"
    dimensions: int = DEFAULT_DIMENSIONS


@dataclass(frozen=True)
class Usage:
    """Token counts as the ``usage`` object reports them; ``completion`` includes ``reasoning``."""

    prompt: int
    completion: int
    cached: int = 0
    reasoning: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
            "prompt_tokens_details": {"cached_tokens": self.cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


@dataclass(frozen=True)
class ChatAnswer:
    """What the fake says: ``content``, or ``refusal`` for a refused structured-output request."""

    content: str | None
    usage: Usage
    finish_reason: str = "stop"
    refusal: str | None = None


def _text_of(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return _checked(content, where)
    if not isinstance(content, list):
        raise _bad(where, f"{where} must be a string or a list of content parts, got {content!r}")
    texts = []
    for index, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _bad(f"{where}[{index}]", f"{where}[{index}] must be an object with a 'type'")
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise _bad(f"{where}[{index}].text", f"{where}[{index}].text must be a string")
            texts.append(_checked(part["text"], f"{where}[{index}].text"))
    return "\n".join(texts)


def _checked(text: str, where: str) -> str:
    if not is_valid_text(text):
        raise _bad(where, f"{where} is not valid Unicode (it holds a lone surrogate); send UTF-8")
    return text


def _messages(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise _bad(
            "messages",
            f"messages must be a non-empty list of messages, got {raw!r}; "
            'send e.g. [{"role": "user", "content": "Hello"}]',
        )
    messages = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _bad(where, f"{where} must be an object with 'role' and 'content'")
        role = message.get("role")
        if role not in _ROLES:
            raise _bad(
                f"{where}.role", f"{where}.role must be one of {', '.join(_ROLES)}, got {role!r}"
            )
        messages.append(
            {"role": role, "content": _text_of(message.get("content"), f"{where}.content")}
        )
    return messages


def _model(raw: dict[str, Any]) -> str:
    model = raw.get("model")
    if not isinstance(model, str) or not model:
        raise _bad(
            "model", f"model must be a non-empty string, got {model!r}; send e.g. 'fake-model'"
        )
    return model


def _response_format(raw: Any) -> tuple[str, dict[str, Any] | None]:
    if raw is None:
        return "text", None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind not in _FORMATS:
        raise _bad(
            "response_format.type",
            f"response_format.type must be one of {', '.join(_FORMATS)}, got {kind!r}",
        )
    if kind != "json_schema":
        return str(kind), None
    spec = raw.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise _bad(
            "response_format.json_schema",
            "response_format.json_schema must be an object with a 'name' and a 'schema'",
        )
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        raise _bad("response_format.json_schema.schema", "the JSON schema must be an object")
    return "json_schema", schema


def _positive_int(raw: dict[str, Any], name: str) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(name, f"{name} must be a positive integer, got {value!r}")
    return value


def parse_chat_body(raw: Any) -> ChatBody:
    """The checked body of a chat completion request, or ``FakeAPIError`` naming the bad field."""
    if not isinstance(raw, dict):
        raise _bad("body", f"the body must be a JSON object, got {type(raw).__name__}")
    model, messages = _model(raw), _messages(raw.get("messages"))
    stream = raw.get("stream") or False
    if not isinstance(stream, bool):
        raise _bad("stream", f"stream must be true or false, got {stream!r}")
    options = raw.get("stream_options") or {}
    if not isinstance(options, dict):
        raise _bad("stream_options", f"stream_options must be an object, got {options!r}")
    if raw.get("n", 1) != 1:
        raise _bad("n", f"the fake answers one choice per request; send n=1, got {raw['n']!r}")
    response_format, schema = _response_format(raw.get("response_format"))
    limit = _positive_int(raw, "max_completion_tokens") or _positive_int(raw, "max_tokens")
    return ChatBody(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=bool(options.get("include_usage")),
        response_format=response_format,
        schema=schema,
        max_tokens=limit,
    )


def parse_embeddings_body(raw: Any) -> EmbeddingsBody:
    """The checked body of an embeddings request; token arrays count each token as a word."""
    if not isinstance(raw, dict):
        raise _bad("body", f"the body must be a JSON object, got {type(raw).__name__}")
    model, given = _model(raw), raw.get("input")
    if isinstance(given, str) or (isinstance(given, list) and given and _is_tokens(given)):
        given = [given]
    if not isinstance(given, list) or not given:
        raise _bad("input", f"input must be a string or a non-empty list of them, got {given!r}")
    texts = []
    for index, item in enumerate(given):
        if isinstance(item, list) and _is_tokens(item):
            item = " ".join(f"#{token}" for token in item)
        if not isinstance(item, str):
            raise _bad(f"input[{index}]", f"input[{index}] must be a string, got {item!r}")
        texts.append(_checked(item, f"input[{index}]"))
    encoding = raw.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise _bad("encoding_format", f"encoding_format must be float or base64, got {encoding!r}")
    dimensions = _positive_int(raw, "dimensions") or DEFAULT_DIMENSIONS
    if dimensions > 4096:
        raise _bad("dimensions", f"dimensions must be at most 4096, got {dimensions}")
    return EmbeddingsBody(model, texts, encoding, dimensions)


def _is_tokens(items: list[Any]) -> bool:
    return all(isinstance(item, int) and not isinstance(item, bool) for item in items)


def _message(answer: ChatAnswer) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": answer.content,
        "refusal": answer.refusal,
        "annotations": [],
    }


def completion_body(answer: ChatAnswer, *, id: str, created: int, model: str) -> dict[str, Any]:
    """A ``chat.completion`` object with one choice."""
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": _FINGERPRINT,
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": _message(answer),
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": answer.usage.to_dict(),
    }


def _pieces(text: str) -> list[str]:
    """``text`` in word-sized pieces that join back to exactly ``text``."""
    pieces: list[str] = []
    start = 0
    for index in range(1, len(text)):
        if text[index].isspace() and not text[index - 1].isspace():
            pieces.append(text[start:index])
            start = index
    if text:
        pieces.append(text[start:])
    return pieces


def chunk_bodies(
    answer: ChatAnswer, *, id: str, created: int, model: str, include_usage: bool
) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed answer, in order: the role, the text a
    word at a time, the finish reason, and (with ``include_usage``) a last chunk with no choices and
    the usage, every other chunk then carrying ``"usage": null``.
    """
    head = {"id": id, "object": "chat.completion.chunk", "created": created, "model": model}
    head["system_fingerprint"] = _FINGERPRINT

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        body = {**head, "choices": [_choice(delta, finish_reason)]}
        return {**body, "usage": None} if include_usage else body

    field_name = "refusal" if answer.refusal is not None else "content"
    text = answer.refusal if answer.refusal is not None else (answer.content or "")
    chunks = [chunk({"role": "assistant", field_name: ""})]
    chunks += [chunk({field_name: piece}) for piece in _pieces(text)]
    chunks.append(chunk({}, answer.finish_reason))
    if include_usage:
        chunks.append({**head, "choices": [], "usage": answer.usage.to_dict()})
    return chunks


def _choice(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def embeddings_body(vectors: list[list[float] | str], *, model: str, tokens: int) -> dict[str, Any]:
    """A ``list`` of ``embedding`` objects (float lists, or base64 strings) with its usage."""
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": vector}
            for index, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def models_body(created: int) -> dict[str, Any]:
    """The ``GET /v1/models`` list."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "steward"}
            for name in MODELS
        ],
    }
