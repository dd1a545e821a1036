"""``Client.prompt`` against a real ``steward serve``: bounded staleness, moved labels, a dead server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steward.client import Client
from steward.core import Steward
from steward.errors import InvalidInputError, NotFoundError, PromptUnavailableError
from steward.llm import prompts

from .conftest import Server
from .test_prompts import PROMPT_V2, make_workspace

BOUND = 1.0  # seconds of staleness the client accepts in these tests


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Steward, Server]]:
    steward = make_workspace(tmp_path / "ws", f"sqlite:///{tmp_path / 'ws' / 'store.db'}")
    steward.apply()
    (steward.settings.workspace / "prompts" / "answer.yaml").write_text(PROMPT_V2)
    steward.apply()
    prompts.move_label(steward.store, "support", "answer", "production", 1, actor="alice")
    server = Server(steward.settings.workspace, steward.settings.database_url)
    server.start()
    yield steward, server
    server.close()
    steward.close()


def test_a_moved_label_is_seen_within_the_staleness_bound(served: tuple[Steward, Server]) -> None:
    steward, server = served
    with Client(server.url, prompt_max_staleness=BOUND) as client:
        first = client.prompt("answer")
        assert (first.version, first.source, first.system) == (1, "server", "support")
        rendered = first.render(question="Where is my parcel?", product="Fiber")
        assert rendered[1] == {"role": "user", "content": "Where is my parcel?"}
        with pytest.raises(InvalidInputError, match="needs the variables product"):
            first.render(question="?")

        moved_at = time.monotonic()
        prompts.move_label(steward.store, "support", "answer", "production", 2, actor="alice")
        seen = None
        while seen is None or seen.version != 2:
            seen = client.prompt("answer")
            assert seen.age_seconds <= BOUND
            assert time.monotonic() - moved_at <= BOUND + 0.5, "v1 was served past the bound"
            time.sleep(0.05)
        assert seen.render(question="?", product="Fiber")[0]["content"].endswith("kind.")


def test_an_old_copy_is_refreshed_in_the_background(served: tuple[Steward, Server]) -> None:
    steward, server = served
    with Client(server.url, prompt_max_staleness=BOUND) as client:
        client.prompt("answer", system="support")
        prompts.move_label(steward.store, "support", "answer", "production", 2, actor="alice")
        time.sleep(BOUND * 0.6)  # past half the bound: served from cache, refreshed behind
        stale = client.prompt("answer", system="support")
        assert (stale.version, stale.source) == (1, "cache")
        deadline = time.monotonic() + 5
        while client.prompt("answer", system="support").version != 2:
            assert time.monotonic() < deadline, "the background refresh never landed"
            time.sleep(0.02)
        fresh = client.prompt("answer", system="support")
        assert fresh.source == "cache" and fresh.age_seconds < BOUND / 2


def test_a_removed_label_is_not_served_past_the_bound(served: tuple[Steward, Server]) -> None:
    steward, server = served
    with Client(server.url, prompt_max_staleness=BOUND) as client:
        assert client.prompt("answer").version == 1
        prompts.move_label(steward.store, "support", "answer", "production", None, actor="alice")
        time.sleep(BOUND + 0.1)
        with pytest.raises(NotFoundError, match="no version at label 'production'"):
            client.prompt("answer")
        fallback = client.prompt("answer", fallback={"template": "Answer: {{ question }}"})
        assert fallback.source == "fallback" and fallback.version is None
        assert "no version at label 'production'" in fallback.reason
        assert fallback.render(question="Why?") == [{"role": "user", "content": "Answer: Why?"}]


def test_a_stopped_server_raises_or_serves_the_explicit_fallback(
    served: tuple[Steward, Server],
) -> None:
    _, server = served
    with Client(server.url, prompt_max_staleness=BOUND, timeout=2) as client:
        client.prompt("answer")
        server.stop()
        cached = client.prompt("answer")  # within the bound, the copy is still good
        assert (cached.version, cached.source) == (1, "cache")
        time.sleep(BOUND + 0.1)
        with pytest.raises(PromptUnavailableError, match="cannot reach the Steward server"):
            client.prompt("answer")
        given = {"messages": [{"role": "user", "content": "Hi {{ name }}"}], "variables": ["name"]}
        fallback = client.prompt("answer", fallback=given)
        assert fallback.source == "fallback" and "cannot reach" in fallback.reason
        assert fallback.render(name="Ada") == [{"role": "user", "content": "Hi Ada"}]

        server.start()  # back: the next call past the bound fetches again
        again = client.prompt("answer")
        assert (again.version, again.source) == (1, "server")


def test_bad_client_arguments_are_named(served: tuple[Steward, Server]) -> None:
    _, server = served
    with pytest.raises(InvalidInputError, match="positive number of seconds, got 0"):
        Client(server.url, prompt_max_staleness=0)
    with Client(server.url) as client:
        with pytest.raises(InvalidInputError, match="needs 'messages' or 'template'"):
            client.prompt("nothing-here", fallback={"text": "hi"})
        with pytest.raises(NotFoundError, match="no system has a prompt 'nothing-here'"):
            client.prompt("nothing-here")
