"""Every call an ``openai`` client makes, logged to Steward as an ``llm_call``, off its path.

::

    import openai
    from steward import Client
    from steward.llm import instrument

    llm = openai.OpenAI()
    steward = Client("https://steward.example.com", token="stw_...")
    with instrument(llm, system="support", steward=steward) as calls:
        answer = steward.prompt("answer")       # a steward.client.Prompt: name and version
        llm.chat.completions.create(
            model="gpt-4o-mini",
            messages=answer.render(question="Where is my parcel?"),
            steward_prompt=answer,              # taken out before openai sees the call
        )
    print(calls.sent, calls.failed, calls.dropped)

``instrument`` patches the client in place (and every copy made with ``with_options``), so code
holding it needs no change; ``close()``, or leaving the ``with`` block, undoes that and sends what
is queued. ``openai.AsyncOpenAI`` works alike. Logged: ``chat.completions.create`` and ``.parse``,
``responses.create`` and ``.parse``, whole or streamed, hence the ``.stream()`` helpers (they call
``create``). Not logged: ``with_raw_response``/``with_streaming_response`` calls (the caller reads
the raw body itself) and other endpoints (embeddings, files, ...).

Each call is one record of ``steward.llm.calls``, built from what the call sent and got back (no
extra request): the usage (chat ``prompt_tokens``, cached included, as ``input_tokens``, their
``prompt_tokens_details.cached_tokens`` and ``.cache_write_tokens`` as ``cache_read_tokens`` and
``cache_creation_tokens``, ``completion_tokens``, reasoning included, as ``output_tokens``, their
``completion_tokens_details.reasoning_tokens`` as ``reasoning_tokens``; the Responses API's
``input_tokens``, ``output_tokens`` and ``_details`` likewise), the latency, the finish reasons (a
Responses API status in chat's words: ``stop``, ``tool_calls``, ``length``, ``content_filter``), the
model that answered and the texts: the input as ``role: text`` lines (``instructions`` as
``system``), the output as the first choice's content, else refusal, else tool calls as
``name(arguments)``. ``text=False`` sends no text. Impossible counts (cached above input, reasoning
above output) are capped with a warning: the server would refuse the whole batch they travel in.

Off the caller's path: the record goes on the bounded queue of a ``steward.client.BatchingLogger``
whose thread sends batches to ``/v1/systems/{system}/llm-calls:log``; a full queue or a down server
drops and counts records (``dropped``, ``failed``), never makes the caller wait. A call that raises
is logged with ``error`` (``"RateLimitError: ..."``) and the same exception re-raised.

Streams: chunks reach the caller as they arrive and the call is logged when the stream ends.

- A chat stream reports usage only when asked with ``stream_options={"include_usage": True}``.
  The wrapper asks (``stream_usage=True``, the default), and hides the extra last chunk (no
  choices, only usage) from a caller who had not asked, so the caller sees the chunks it would have
  seen unwrapped. ``stream_usage=False`` leaves the request alone, for servers that refuse
  ``stream_options``; such streams are logged with no token counts.
- ``ttft_ms`` is the time to the first chunk with a choice (chat) or the first output delta
  (Responses API); ``latency_ms`` the time to the last chunk.
- A stream closed before its end (``close()``, a ``with`` block left, the stream dropped): if the
  answer was complete and only the usage chunk was still to come (a caller that stops at the finish
  reason), a background thread reads that chunk (an async ``close()`` reads it before returning),
  then logs the call in full.
  Otherwise the call is logged with what arrived and ``error`` saying it was closed early: its
  usage never came, so its token counts (and cost) are not the provider's.

Prompt attribution: ``instrument(prompt=...)`` sets the prompt of every call; a call's own
``steward_prompt=`` (a ``steward.client.Prompt``, or a prompt's name) wins for that call, and
``steward_prompt=None`` logs it with none. ``prompt_version`` is the fetched version (None for a
fallback). openai's type stubs do not know the keyword: mypy wants ``# type: ignore[call-overload]``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import openai

from steward.client import BatchingLogger, Client, Prompt
from steward.errors import InvalidInputError

__all__ = ["Instrumentation", "instrument"]

logger = logging.getLogger(__name__)

ClientT = TypeVar("ClientT", openai.OpenAI, openai.AsyncOpenAI)

#: The methods wrapped: (attribute path from the client, method name, API).
_TARGETS = (
    (("chat", "completions"), "create", "chat"),
    (("chat", "completions"), "parse", "chat"),
    (("responses",), "create", "responses"),
    (("responses",), "parse", "responses"),
)
#: The header openai's ``with_raw_response``/``with_streaming_response`` add to a call.
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
_ERROR_CHARS = 2_000
_CLOSED_EARLY = (
    "stream closed by the caller before it ended; the provider's usage was not received, so the "
    "token counts are incomplete"
)
_RESPONSE_ENDS = ("response.completed", "response.incomplete", "response.failed")
_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}
_UNSET: Any = object()
#: Clients instrumented now, each to its Instrumentation (a client is instrumented once).
_INSTRUMENTED: weakref.WeakKeyDictionary[Any, Instrumentation[Any]] = weakref.WeakKeyDictionary()


def instrument(
    client: ClientT,
    *,
    system: str,
    steward: Client,
    prompt: Prompt | str | None = None,
    provider: str | None = None,
    text: bool = True,
    stream_usage: bool = True,
    batch_size: int = 100,
    flush_seconds: float = 1.0,
    max_queue: int = 10_000,
) -> Instrumentation[ClientT]:
    """Log every chat completion and response ``client`` makes to ``system`` of ``steward``.

    ``client`` is an ``openai.OpenAI`` or ``openai.AsyncOpenAI``, patched in place; ``steward`` a
    ``steward.Client``. ``prompt`` attributes every call to a prompt (a call's ``steward_prompt=``
    wins). ``provider`` names the provider for pricing (default: ``openai`` for OpenAI's own API,
    else none, and the price table finds it from the model). ``text=False`` keeps the texts on
    this machine. ``stream_usage`` asks chat streams for their usage (see the module docstring).
    The queue holds ``max_queue`` calls; ``batch_size`` and ``flush_seconds`` shape the sending.

    >>> calls = instrument(openai.OpenAI(api_key="sk-..."), system="support",
    ...                    steward=Client("http://127.0.0.1:8000"))  # doctest: +SKIP
    """
    _check_arguments(client, steward, prompt)
    sender = BatchingLogger(
        steward,
        system,
        batch_size=batch_size,
        flush_seconds=flush_seconds,
        max_queue=max_queue,
        records="llm_calls",
    )
    made = Instrumentation(
        client,
        system=system,
        logger=sender,
        prompt=prompt,
        provider=_provider_of(client) if provider is None else provider,
        text=text,
        stream_usage=stream_usage,
    )
    made._attach(client)
    return made


class Instrumentation(Generic[ClientT]):
    """What ``instrument`` returns: the patched ``client``, its ``logger`` and their counts.

    ``sent`` calls were stored by the server, ``failed`` could not be sent (the server refused
    them or could not be reached), ``dropped`` were lost before sending (the queue was full, or
    ``close`` ran out of time). ``close()`` unpatches the client and sends what is queued.
    """

    def __init__(
        self,
        client: ClientT,
        *,
        system: str,
        logger: BatchingLogger,
        prompt: Prompt | str | None,
        provider: str,
        text: bool,
        stream_usage: bool,
    ) -> None:
        self.client: ClientT = client
        self.system = system
        self.logger = logger
        self.prompt = prompt
        self.provider = provider
        self.text = text
        self.stream_usage = stream_usage
        self.closed = False
        self._attached: weakref.WeakSet[openai.OpenAI | openai.AsyncOpenAI] = weakref.WeakSet()
        self._drains: weakref.WeakSet[threading.Thread] = weakref.WeakSet()

    @property
    def sent(self) -> int:
        """Calls the server stored."""
        return self.logger.sent

    @property
    def failed(self) -> int:
        """Calls the server refused or could not be reached for."""
        return self.logger.failed

    @property
    def dropped(self) -> int:
        """Calls lost before sending: queue full, not sent in time, or unreadable."""
        return self.logger.dropped

    def close(self, timeout: float = 30.0) -> None:
        """Unpatch the clients, then send what is queued (waiting at most ``timeout`` seconds)."""
        if self.closed:
            return
        deadline = time.monotonic() + timeout
        for drain in list(self._drains):  # streams closed just before: their usage is coming
            drain.join(max(deadline - time.monotonic(), 0))
        self.closed = True
        for client in list(self._attached):
            _detach(client)
        self.logger.close(max(deadline - time.monotonic(), 0.1))

    def __enter__(self) -> Instrumentation[ClientT]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _attach(self, client: Any) -> None:
        """Patch ``client`` (this instrumentation's, or a copy of it) to log through this one."""
        is_async = isinstance(client, openai.AsyncOpenAI)
        for path, name, kind in _TARGETS:
            resource = functools.reduce(getattr, path, client)
            original = getattr(resource, name)
            wrap = _wrap_async if is_async else _wrap_sync
            setattr(resource, name, wrap(self, kind, original))
        original_copy = client.copy

        @functools.wraps(original_copy)
        def copy(*args: Any, **kwargs: Any) -> Any:
            made = original_copy(*args, **kwargs)
            if not self.closed:
                self._attach(made)
            return made

        client.copy = client.with_options = copy
        _INSTRUMENTED[client] = self
        self._attached.add(client)

    # The wrappers' steps. Each is guarded: a fault in reading a call must never fail the call.

    def _start(self, kind: str, kwargs: dict[str, Any]) -> _Call | None:
        """A record for a call about to be made with ``kwargs``, which lose ``steward_prompt`` and
        may gain ``stream_options``; None for a raw-response call, which is not logged."""
        given = kwargs.pop("steward_prompt", _UNSET)
        name, version = _attribution(self.prompt if given is _UNSET else given)
        headers = kwargs.get("extra_headers")
        if isinstance(headers, Mapping) and _RAW_RESPONSE_HEADER in headers:
            return None
        try:
            call = _Call(kind, kwargs, text=self.text)
            call.record.update(prompt=name, prompt_version=version, provider=self.provider)
            if kind == "chat" and kwargs.get("stream") is True:
                options = kwargs.get("stream_options")
                options = dict(options) if isinstance(options, Mapping) else {}
                asked = bool(options.get("include_usage"))
                call.expects_usage = asked or self.stream_usage
                if self.stream_usage and not asked:
                    call.hide_usage = True
                    kwargs["stream_options"] = {**options, "include_usage": True}
            return call
        except Exception as error:
            self._lost(error)
            return None

    def _returned(self, call: _Call, result: Any) -> Any:
        """What the caller gets: ``result``, or a stream that logs the call when it ends."""
        if isinstance(result, openai.Stream):
            return _LoggedStream(result, call, self)
        if isinstance(result, openai.AsyncStream):
            return _LoggedAsyncStream(result, call, self)
        call.last = time.perf_counter()
        try:
            call.read_answer(result)
        except Exception as error:
            call.broken = True
            self._lost(error)
        self._end(call)
        return result

    def _observe(self, call: _Call, item: Any) -> bool:
        """Note a stream's chunk or event; False for the usage chunk the caller must not see."""
        if call.broken:
            return True
        try:
            call.observe(item)
            return not (call.hide_usage and not item.choices and item.usage is not None)
        except Exception as error:
            call.broken = True
            self._lost(error)
            return True

    def _end(self, call: _Call, error: BaseException | str | None = None) -> None:
        """Queue the call's record, once; a call made after ``close`` is counted as dropped."""
        if call.done:
            return
        call.done = True
        if call.broken:
            return
        if self.closed:
            self.logger.dropped += 1
            return
        try:
            self.logger.put(call.finish(error))
        except Exception as fault:
            self._lost(fault)

    def _drain(self, read_rest: Callable[[], None]) -> None:
        """Run ``read_rest`` on a thread of its own, which ``close`` waits for."""
        thread = threading.Thread(target=read_rest, name="steward-llm-drain", daemon=True)
        self._drains.add(thread)  # weakly: a finished thread leaves the set by itself
        thread.start()

    def _lost(self, error: Exception) -> None:
        self.logger.dropped += 1
        logger.warning(
            "could not record an LLM call of %s: %s: %s", self.system, type(error).__name__, error
        )


def _wrap_sync(handle: Instrumentation[Any], kind: str, original: Callable[..., Any]) -> Any:
    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        call = handle._start(kind, kwargs)
        if call is None:
            return original(*args, **kwargs)
        try:
            result = original(*args, **kwargs)
        except BaseException as error:
            handle._end(call, error)
            raise
        return handle._returned(call, result)

    return create


def _wrap_async(handle: Instrumentation[Any], kind: str, original: Callable[..., Any]) -> Any:
    @functools.wraps(original)
    async def create(*args: Any, **kwargs: Any) -> Any:
        call = handle._start(kind, kwargs)
        if call is None:
            return await original(*args, **kwargs)
        try:
            result = await original(*args, **kwargs)
        except BaseException as error:
            handle._end(call, error)
            raise
        return handle._returned(call, result)

    return create


def _detach(client: Any) -> None:
    for path, name, _ in _TARGETS:
        vars(functools.reduce(getattr, path, client)).pop(name, None)
    vars(client).pop("copy", None)
    vars(client).pop("with_options", None)
    _INSTRUMENTED.pop(client, None)


def _check_arguments(client: Any, steward: Any, prompt: Any) -> None:
    if not isinstance(client, openai.OpenAI | openai.AsyncOpenAI):
        raise InvalidInputError(
            f"instrument takes an openai.OpenAI or openai.AsyncOpenAI client, got "
            f"{type(client).__name__} {client!r}; pass e.g. openai.OpenAI()"
        )
    if not isinstance(steward, Client):
        raise InvalidInputError(
            f"instrument's steward= takes a steward.Client, got {type(steward).__name__} "
            f"{steward!r}; pass Client(url, token=...)"
        )
    found = _INSTRUMENTED.get(client)
    if found is not None:
        raise InvalidInputError(
            f"this client is already instrumented (for system {found.system!r}); close() that "
            "first, or instrument another openai client"
        )
    _attribution(prompt)  # refused now rather than at the first call


def _attribution(given: Any) -> tuple[str | None, int | None]:
    if given is None:
        return None, None
    if isinstance(given, Prompt):
        return given.name, given.version
    if isinstance(given, str) and given:
        return given, None
    raise InvalidInputError(
        f"steward_prompt takes the steward.client.Prompt a call used (from Client.prompt(...)) or "
        f"a prompt's name, got {type(given).__name__} {given!r}"
    )


def _provider_of(client: Any) -> str:
    """``openai`` for OpenAI's own API; none for another server (the price table finds it)."""
    host = getattr(getattr(client, "base_url", None), "host", "") or ""
    return "openai" if host == "api.openai.com" else ""


# ---------------------------------------------------------------------------------------------
# One call


class _Call:
    """What is known of one call so far; ``finish`` turns it into the record to send."""

    def __init__(self, kind: str, kwargs: dict[str, Any], *, text: bool) -> None:
        self.kind = kind
        self.started = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        self.expects_usage = False
        self.hide_usage = False
        self.usage_seen = False
        self.generation_over = False
        self.done = False
        self.broken = False
        self.pieces: list[str] = []
        self.tools: dict[int, dict[str, str]] = {}
        self.finish_reasons: dict[int, str] = {}
        self.text = text
        model = kwargs.get("model")
        self.record: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "event_time": datetime.now(UTC),
            "operation": "chat",
            "request_model": model if isinstance(model, str) and model else None,
            "input_text": _input_text(kind, kwargs) if text else None,
        }

    def read_answer(self, answer: Any) -> None:
        """A whole answer: a ``ChatCompletion`` or a ``Response``."""
        if self.kind == "responses":
            self._read_response(answer)
            return
        self.record["response_model"] = answer.model
        if answer.usage is not None:
            self._count(_usage(answer.usage, "prompt", "completion"))
        choices = sorted(answer.choices, key=lambda choice: choice.index)
        self.record["finish_reasons"] = [c.finish_reason for c in choices if c.finish_reason]
        self._output(_message_text(choices[0].message) if choices else "")

    def observe(self, item: Any) -> None:
        """One streamed chat chunk or Responses API event."""
        now = self.last = time.perf_counter()
        if self.kind == "responses":
            self._observe_event(item, now)
            return
        if item.model:
            self.record["response_model"] = item.model
        if item.usage is not None:
            self._count(_usage(item.usage, "prompt", "completion"))
            self.usage_seen = True
        for choice in item.choices or []:
            self.first = self.first if self.first is not None else now
            if choice.finish_reason:
                self.finish_reasons[choice.index] = choice.finish_reason
                self.generation_over = True
            if choice.index == 0 and choice.delta is not None:
                self._add_delta(choice.delta)

    def finish(self, error: BaseException | str | None) -> dict[str, Any]:
        """The record, with the timings and the error (an exception raised, or a message)."""
        end = self.last if self.last is not None else time.perf_counter()
        record = self.record
        record["latency_ms"] = (end - self.started) * 1000
        if self.first is not None:
            record["ttft_ms"] = (self.first - self.started) * 1000
        if self.finish_reasons:
            record["finish_reasons"] = [self.finish_reasons[i] for i in sorted(self.finish_reasons)]
        if self.pieces or self.tools:
            self._output("".join(self.pieces) or _tool_text(self.tools.values()))
        if isinstance(error, BaseException):
            record["error"] = f"{type(error).__name__}: {error}"[:_ERROR_CHARS]
        elif error is not None:
            record["error"] = error[:_ERROR_CHARS]
        model = record["request_model"] or record.get("response_model")
        record["request_model"] = model or "unknown"  # a call refused before naming its model
        return record

    def _observe_event(self, event: Any, now: float) -> None:
        kind = str(getattr(event, "type", ""))
        if self.first is None and kind.startswith("response.output") and kind.endswith(".delta"):
            self.first = now
        if kind == "response.output_text.delta":
            self.pieces.append(str(getattr(event, "delta", "")))
        response = getattr(event, "response", None)
        if kind in _RESPONSE_ENDS and response is not None:
            self._read_response(response)
            self.generation_over = True
        elif response is not None and getattr(response, "model", None):
            self.record["response_model"] = response.model
        elif kind == "error":
            self.record["error"] = f"{getattr(event, 'code', '')}: {getattr(event, 'message', '')}"

    def _read_response(self, response: Any) -> None:
        self.record["response_model"] = response.model
        if response.usage is not None:
            self._count(_usage(response.usage, "input", "output"))
            self.usage_seen = True
        self.record["finish_reasons"] = [_response_finish(response)]
        calls = [item for item in response.output or [] if item.type == "function_call"]
        self._output(response.output_text or _tool_text(calls))
        failure = getattr(response, "error", None)
        if failure is not None:
            self.record["error"] = f"{failure.code}: {failure.message}"

    def _add_delta(self, delta: Any) -> None:
        piece = delta.content or getattr(delta, "refusal", None)
        if piece:
            self.pieces.append(piece)
        for tool in getattr(delta, "tool_calls", None) or []:
            parts = self.tools.setdefault(tool.index, {"name": "", "arguments": ""})
            if tool.function is not None:
                parts["name"] += tool.function.name or ""
                parts["arguments"] += tool.function.arguments or ""

    def _output(self, text: str) -> None:
        if self.text:
            self.record["output_text"] = text

    def _count(self, counts: tuple[int, int, int, int, int]) -> None:
        given, cached, written, output, reasoning = counts
        if cached + written > given or reasoning > output:
            logger.warning(
                "LLM call %s: the provider reported %d input tokens (%d cached, %d written to the "
                "cache) and %d output tokens (%d reasoning); cached and reasoning capped to fit",
                self.record["id"], given, cached, written, output, reasoning,
            )  # fmt: skip
            cached = min(cached, given)
            written = min(written, given - cached)
            reasoning = min(reasoning, output)
        self.record.update(
            input_tokens=given,
            cache_read_tokens=cached,
            cache_creation_tokens=written,
            output_tokens=output,
            reasoning_tokens=reasoning,
        )


# ---------------------------------------------------------------------------------------------
# Streams


class _Logged:
    """What both kinds of stream share: the call, what it has seen, how it ended."""

    def __init__(self, stream: Any, call: _Call, handle: Instrumentation[Any]) -> None:
        self._stream = stream
        self._call = call
        self._handle = handle
        self._closed = False
        self.response = stream.response

    def _ended(self, error: BaseException | str | None = None) -> None:
        self._closed = True
        self._handle._end(self._call, error)

    def _usage_pending(self) -> bool:
        """The answer is complete and only the usage chunk the wrapper asked for is to come."""
        call = self._call
        return not call.done and call.generation_over and call.expects_usage and not call.usage_seen

    def _drained(self, error: Exception | None) -> None:
        if error is not None:  # the caller has gone; the record says what was missed
            logger.info("reading the rest of a closed LLM stream failed: %s", error)
        self._handle._end(self._call, None if self._call.usage_seen else _CLOSED_EARLY)

    def __getattr__(self, name: str) -> Any:
        stream = self.__dict__.get("_stream")
        if stream is None:
            raise AttributeError(name)
        return getattr(stream, name)


class _LoggedStream(_Logged):
    """An ``openai.Stream`` that notes what passes through and logs the call when it ends."""

    def __init__(self, stream: Any, call: _Call, handle: Instrumentation[Any]) -> None:
        super().__init__(stream, call, handle)
        self._items = iter(stream)

    def __iter__(self) -> _LoggedStream:
        return self

    def __next__(self) -> Any:
        while not self._closed:
            try:
                item = next(self._items)
            except StopIteration:
                self._ended()
                raise
            except BaseException as error:
                self._ended(error)
                raise
            if self._handle._observe(self._call, item):
                return item
        raise StopIteration

    def close(self) -> None:
        """Close the response; a call still open is logged (see the module docstring)."""
        self._closed = True
        if self._usage_pending():
            self._handle._drain(self._drain)
            return
        self._stream.close()
        self._handle._end(self._call, _CLOSED_EARLY)  # nothing to do for a call already logged

    def _drain(self) -> None:
        failure = None
        try:
            for item in self._items:
                self._handle._observe(self._call, item)
        except Exception as error:
            failure = error
        finally:
            self._stream.close()
            self._drained(failure)

    def __enter__(self) -> _LoggedStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._call.done:
                self.close()
        except Exception:  # at interpreter exit there may be no thread left to start
            return


class _LoggedAsyncStream(_Logged):
    """An ``openai.AsyncStream`` that notes what passes through and logs the call when it ends."""

    def __init__(self, stream: Any, call: _Call, handle: Instrumentation[Any]) -> None:
        super().__init__(stream, call, handle)
        self._items = stream.__aiter__()

    def __aiter__(self) -> _LoggedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        while not self._closed:
            try:
                item = await self._items.__anext__()
            except StopAsyncIteration:
                self._ended()
                raise
            except BaseException as error:
                self._ended(error)
                raise
            if self._handle._observe(self._call, item):
                return item
        raise StopAsyncIteration

    async def close(self) -> None:
        """Close the response; a call still open is logged (see the module docstring)."""
        self._closed = True
        if self._usage_pending():  # the server sent the usage with the answer's end: read it
            await self._drain()
            return
        await self._stream.close()
        self._handle._end(self._call, _CLOSED_EARLY)

    async def _drain(self) -> None:
        failure = None
        try:
            async for item in self._items:
                self._handle._observe(self._call, item)
        except Exception as error:
            failure = error
        finally:
            await self._stream.close()
            self._drained(failure)

    async def __aenter__(self) -> _LoggedAsyncStream:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def __del__(self) -> None:
        try:  # no event loop to read the rest with here: log what arrived
            self._handle._end(self._call, _CLOSED_EARLY)
        except Exception:
            return


# ---------------------------------------------------------------------------------------------
# Reading openai's objects and the caller's arguments


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)


def _number(value: Any, name: str) -> int:
    found = _field(value, name) if value is not None else None
    return found if isinstance(found, int) else 0


def _usage(usage: Any, given: str, made: str) -> tuple[int, int, int, int, int]:
    """(input, cache read, cache write, output, reasoning) from a usage with ``given`` and ``made``
    tokens: ``prompt``/``completion`` for chat, ``input``/``output`` for the Responses API."""
    given_details = getattr(usage, f"{given}_tokens_details", None)
    made_details = getattr(usage, f"{made}_tokens_details", None)
    return (
        getattr(usage, f"{given}_tokens", None) or 0,
        _number(given_details, "cached_tokens"),
        _number(given_details, "cache_write_tokens"),
        getattr(usage, f"{made}_tokens", None) or 0,
        _number(made_details, "reasoning_tokens"),
    )


def _response_finish(response: Any) -> str:
    """The Responses API's status in chat's finish-reason words."""
    status = str(response.status or "")
    if status == "completed":
        calls = any(_field(item, "type") == "function_call" for item in response.output or [])
        return "tool_calls" if calls else "stop"
    if status == "incomplete":
        reason = _field(response.incomplete_details, "reason")
        return _INCOMPLETE.get(str(reason), str(reason or status))
    return status


def _tool_text(calls: Iterable[Any]) -> str:
    """Tool calls as ``name(arguments)`` lines, chat's (in ``function``) or the Responses API's."""
    found = [_field(call, "function") or call for call in calls]
    return "\n".join(f"{_field(f, 'name') or ''}({_field(f, 'arguments') or ''})" for f in found)


def _message_text(message: Any) -> str:
    if message.content:
        return str(message.content)
    if getattr(message, "refusal", None):
        return str(message.refusal)
    return _tool_text(getattr(message, "tool_calls", None) or [])


def _content_text(content: Any) -> str:
    """A message's content as text: strings as they are, a part that is not text by its type."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable) and not isinstance(content, Mapping):
        texts = []
        for part in content:
            found = _field(part, "text")
            texts.append(found if isinstance(found, str) else f"[{_field(part, 'type')}]")
        return "\n".join(texts)
    return str(content)


def _input_text(kind: str, kwargs: dict[str, Any]) -> str:
    """The input as ``role: text`` lines; a one-pass iterable of messages is kept as a list."""
    lines = []
    if kind == "chat":
        messages = kwargs.get("messages")
        if messages is None or isinstance(messages, str | Mapping):
            return ""
        if not isinstance(messages, list | tuple):
            messages = kwargs["messages"] = list(messages)
        for message in messages:
            lines.append(f"{_field(message, 'role')}: {_message_input(message)}")
        return "\n".join(lines)
    instructions = kwargs.get("instructions")
    if isinstance(instructions, str) and instructions:
        lines.append(f"system: {instructions}")
    given = kwargs.get("input")
    if isinstance(given, str):
        lines.append(f"user: {given}")
    elif isinstance(given, list | tuple):
        lines += [_item_input(item) for item in given]
    return "\n".join(lines)


def _message_input(message: Any) -> str:
    text = _content_text(_field(message, "content"))
    calls = _field(message, "tool_calls")
    return text or (_tool_text(calls) if calls else "")


def _item_input(item: Any) -> str:
    kind = _field(item, "type")
    if kind == "function_call":
        return f"assistant: {_field(item, 'name')}({_field(item, 'arguments')})"
    if kind == "function_call_output":
        return f"tool: {_content_text(_field(item, 'output'))}"
    role = _field(item, "role")
    if role is None:
        return f"[{kind}]"
    return f"{role}: {_content_text(_field(item, 'content'))}"
