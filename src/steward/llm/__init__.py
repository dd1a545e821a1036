"""LLM systems: prompts versioned like code, eval sets that gate changes, calls logged and priced.

``steward.llm.instrument(client, system=..., steward=...)`` wraps an official ``openai`` client so
every call is logged (``steward.llm.instrumentation``); it is imported on first use, so the server
and the CLI do not load the wrapper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steward.llm.instrumentation import instrument

__all__ = ["instrument"]


def __getattr__(name: str) -> Any:
    if name == "instrument":
        from steward.llm.instrumentation import instrument

        return instrument
    raise AttributeError(f"module 'steward.llm' has no attribute {name!r}")
