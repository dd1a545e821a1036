"""Filling ``{{ variables }}`` into chat messages, the same way on the server and in the client.

Templates run in Jinja2's sandbox with strict undefined: a variable the caller forgot is an error,
never an empty string sent to a model.

>>> render_messages([{"role": "user", "content": "Hi {{ name }}"}], {"name": "Ada"})
[{'role': 'user', 'content': 'Hi Ada'}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.sandbox import SandboxedEnvironment

from steward.errors import InvalidInputError

__all__ = ["render_messages", "template_variables"]

_ENVIRONMENT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def render_messages(
    messages: Sequence[Mapping[str, str]],
    variables: Mapping[str, Any],
    declared: Sequence[str] = (),
) -> list[dict[str, str]]:
    """``messages`` with ``variables`` filled in; each of ``declared`` must be given."""
    missing = [name for name in declared if name not in variables]
    if missing:
        raise InvalidInputError(
            f"the prompt needs the variables {', '.join(missing)} (it declares "
            f"{', '.join(declared)}); pass each one"
        )
    rendered = []
    for message in messages:
        try:
            content = _ENVIRONMENT.from_string(message["content"]).render(**variables)
        except (UndefinedError, TemplateSyntaxError) as error:
            raise InvalidInputError(f"the prompt could not be rendered: {error}") from None
        rendered.append({"role": message["role"], "content": content})
    return rendered


def template_variables(text: str) -> set[str]:
    """The names a template reads; a syntax error raises ``jinja2.TemplateSyntaxError``."""
    return set(meta.find_undeclared_variables(_ENVIRONMENT.parse(text)))
