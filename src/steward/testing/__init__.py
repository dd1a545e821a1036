"""Test doubles Steward ships for its users: a fake OpenAI-compatible LLM server.

It stands in for a paid external service, so LLM evals run in tests, the demo and CI with no key
and no network::

    from steward.testing import FakeLLMServer

    with FakeLLMServer(seed=0) as server:
        provider = OpenAIProvider(base_url=server.base_url, model="fake-model")

``FakeLLMServer`` and ``create_app`` (which need starlette and uvicorn) are imported on first use;
the judge prompt and the knobs are light.

>>> from steward.testing import JUDGE_SYSTEM_PROMPT
>>> JUDGE_SYSTEM_PROMPT.startswith("You grade an output against a rubric.")
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from steward.testing.engine import FakeLLM
from steward.testing.judge import JUDGE_SYSTEM_PROMPT, grading_message
from steward.testing.knobs import KNOBS, KnobError, Knobs

if TYPE_CHECKING:
    from steward.testing.fake_llm import FakeLLMServer, create_app

__all__ = [
    "JUDGE_SYSTEM_PROMPT",
    "KNOBS",
    "FakeLLM",
    "FakeLLMServer",
    "KnobError",
    "Knobs",
    "create_app",
    "grading_message",
]


def __getattr__(name: str) -> Any:
    """``FakeLLMServer`` and ``create_app``, imported the first time they are asked for."""
    if name in ("FakeLLMServer", "create_app"):
        from steward.testing import fake_llm

        return getattr(fake_llm, name)
    raise AttributeError(f"module 'steward.testing' has no attribute {name!r}")
