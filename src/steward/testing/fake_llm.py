"""A fake OpenAI-compatible server, so LLM evals run in tests, the demo and CI with no key and no
network.

It answers ``POST /v1/chat/completions`` (whole, or streamed as server-sent events),
``POST /v1/embeddings`` and ``GET /v1/models`` the way the OpenAI API does, deterministically for a
seed, and its knobs (``steward.testing.knobs.KNOBS``) make it long-winded, slow, flaky, refusing,
broken-JSON or a coin-flipping judge. Knobs are read and changed at run time with
``configure(**knobs)`` or over HTTP: ``GET``/``POST /_fake/config``.

In a test::

    with FakeLLMServer(seed=0, verbosity=2) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused")
        client.chat.completions.create(model="fake-model", messages=[...])
        server.configure(refusal_rate=0.5)

In a user's CI, in the foreground (the base URL is printed on start)::

    python -m steward.testing.fake_llm --port 8900 --seed 0 --verbosity 1

The ASGI app alone, for an in-process transport:

>>> app = create_app(FakeLLM(seed=3))
>>> [route.path for route in app.routes][:3]
['/v1/chat/completions', '/v1/embeddings', '/v1/models']
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from steward.errors import ConfigError, StewardError
from steward.testing.engine import FakeLLM
from steward.testing.judge import JUDGE_SYSTEM_PROMPT
from steward.testing.knobs import KNOBS, KnobError, Knobs
from steward.testing.protocol import (
    FakeAPIError,
    chunk_bodies,
    completion_body,
    embeddings_body,
    models_body,
    parse_chat_body,
    parse_embeddings_body,
)

__all__ = ["JUDGE_SYSTEM_PROMPT", "FakeLLM", "FakeLLMServer", "create_app", "main"]

#: How long a client should wait before retrying an injected 429 or 500 (``retry-after-ms``).
RETRY_AFTER_MS = 10
#: ``created`` of the listed models: a fixed moment, so the list never changes.
_MODELS_CREATED = 1_700_000_000


def _fake(request: Request) -> FakeLLM:
    fake: FakeLLM = request.app.state.fake
    return fake


def error_response(error: FakeAPIError) -> JSONResponse:
    """``error`` in OpenAI's shape, with a short ``retry-after-ms`` on injected 429s and 500s."""
    headers = {"retry-after-ms": str(RETRY_AFTER_MS)} if error.status >= 429 else None
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError as error:
        raise FakeAPIError(
            400, f"the body is not valid JSON ({error}); send a JSON object"
        ) from None


async def chat_completions(request: Request) -> Response:
    """``POST /v1/chat/completions``: an answer, whole or streamed (``stream: true``)."""
    fake = _fake(request)
    fake.count_request()
    try:
        body = parse_chat_body(await _json_body(request))
        knobs = fake.knobs_for(body.model)  # one snapshot for the whole answer
        await asyncio.sleep(knobs.latency_ms / 1000)
        answer = fake.chat(body, knobs)
    except FakeAPIError as error:
        return error_response(error)
    id, created = f"chatcmpl-fake{fake.requests:010d}", int(time.time())
    if not body.stream:
        return JSONResponse(completion_body(answer, id=id, created=created, model=body.model))
    chunks = chunk_bodies(
        answer, id=id, created=created, model=body.model, include_usage=body.include_usage
    )
    return StreamingResponse(_events(chunks), media_type="text/event-stream")


async def _events(chunks: list[dict[str, Any]]) -> AsyncIterator[str]:
    for chunk in chunks:
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"


async def embeddings(request: Request) -> Response:
    """``POST /v1/embeddings``: hashed bag-of-words vectors, as floats or base64."""
    fake = _fake(request)
    fake.count_request()
    try:
        body = parse_embeddings_body(await _json_body(request))
        knobs = fake.knobs_for(body.model)
        await asyncio.sleep(knobs.latency_ms / 1000)
        vectors, tokens = fake.embed(body, knobs)
    except FakeAPIError as error:
        return error_response(error)
    return JSONResponse(embeddings_body(vectors, model=body.model, tokens=tokens))


async def models(request: Request) -> Response:
    """``GET /v1/models``: the fake's model names (any name is accepted all the same)."""
    _fake(request).count_request()
    return JSONResponse(models_body(_MODELS_CREATED))


async def config(request: Request) -> Response:
    """``GET /_fake/config``: the knobs; ``POST`` a JSON object of knobs to change them."""
    fake = _fake(request)
    if request.method == "GET":
        return JSONResponse(fake.knobs.to_dict())
    try:
        changes = await _json_body(request)
        if not isinstance(changes, dict):
            raise FakeAPIError(400, f"send a JSON object of knobs, got {changes!r}", param="body")
        model = changes.pop("model", None)
        if model is not None and not isinstance(model, str):
            raise FakeAPIError(400, f"'model' names one model, got {model!r}", param="model")
        knobs = fake.configure(model=model, **changes)
    except KnobError as error:
        return error_response(FakeAPIError(400, str(error), param=error.knob))
    except FakeAPIError as error:
        return error_response(error)
    return JSONResponse(knobs.to_dict())


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    message = f"the fake LLM has no {request.method} {request.url.path}"
    return error_response(FakeAPIError(status, message, code="unknown_url"))


ROUTES = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", models, methods=["GET"]),
    Route("/_fake/config", config, methods=["GET", "POST"]),
]


def create_app(fake: FakeLLM) -> Starlette:
    """The ASGI app serving ``fake``; any path it does not know is a 404 in OpenAI's error shape."""
    app = Starlette(routes=ROUTES, exception_handlers={404: _not_found, 405: _not_found})
    app.state.fake = fake
    return app


class FakeLLMServer:
    """The fake on a real uvicorn server on ``host`` (a free port unless ``port`` is given), in a
    background thread. ``knobs`` are those of ``KNOBS``; a bad one raises ``KnobError``.

    Use it as a context manager; ``base_url`` is ``http://127.0.0.1:PORT/v1`` once started (a
    loopback address when it listens on all of them).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> None:
        self.fake = FakeLLM(**knobs)
        self.app = create_app(self.fake)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The URL to give an OpenAI client, ending in ``/v1``."""
        if self._server is None:
            raise StewardError(
                "the fake LLM server has not started: call start() or use it in a with block"
            )
        shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://{f'[{shown}]' if ':' in shown else shown}:{self.port}/v1"

    @property
    def knobs(self) -> Knobs:
        """The knobs now in force."""
        return self.fake.knobs

    @property
    def requests(self) -> int:
        """How many API requests (``/v1/...``) were served, errors included."""
        return self.fake.requests

    def configure(self, *, model: str | None = None, **knobs: Any) -> Knobs:
        """Change knobs while serving (for one ``model`` only, if given); validated first, so a
        bad one changes nothing."""
        return self.fake.configure(model=model, **knobs)

    def start(self) -> FakeLLMServer:
        """Listen, and return once the server accepts connections."""
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            ws="none",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="fake-llm", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise ConfigError(
                    f"the fake LLM server could not listen on {self.host}:{self.port}; "
                    "pick another --port, or 0 for a free one"
                )
            time.sleep(0.01)
        self.port = int(server.servers[0].sockets[0].getsockname()[1])
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end; ``base_url`` stays as it was."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
            self._thread = None

    def wait(self) -> None:
        """Block until the server stops (for the foreground command)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m steward.testing.fake_llm",
        description="Serve a fake OpenAI-compatible API for LLM evals with no key and no network.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8900, help="port (0 for a free one)")
    defaults = Knobs()
    for spec in KNOBS:
        flag = "--" + spec.name.replace("_", "-")
        default = getattr(defaults, spec.name)
        if isinstance(default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=spec.help
            )
        else:
            kind = int if isinstance(default, int) else float if isinstance(default, float) else str
            parser.add_argument(flag, type=kind, default=None, help=f"{spec.help} ({spec.allowed})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake in the foreground until interrupted; prints its base URL first."""
    parser = _parser()
    arguments = vars(parser.parse_args(argv))
    host, port = arguments.pop("host"), arguments.pop("port")
    knobs = {name: value for name, value in arguments.items() if value is not None}
    try:
        server = FakeLLMServer(host=host, port=port, **knobs).start()
    except StewardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    print(f"fake OpenAI-compatible server at {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
