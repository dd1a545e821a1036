"""A prompt file: a template with ``{{ variables }}``, the model to call and how.

Prompts live as files in the user's git, next to ``steward.yaml`` (``docs/prompts.md``)::

    description: Answer a customer's support question.
    provider: local            # a name in the system's providers:, or echo / openai
    model: gpt-4o-mini
    parameters: {temperature: 0.2, max_tokens: 300}
    variables: [question, product]
    messages:
      - {role: system, content: "You answer questions about {{ product }}. Be brief."}
      - {role: user, content: "{{ question }}"}
    output_schema: null        # or a JSON schema the answer must follow

``template: "..."`` is the shorthand for one user message. The file's SHA-256 is the version's
identity: the same bytes are the same version, whatever the file is called.

>>> spec = parse_prompt("template: 'Hello {{ name }}'\\nvariables: [name]\\n", "greet.yaml")
>>> spec.render({"name": "Ada"})[0]["content"]
'Hello Ada'
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any, Literal

import yaml
from jinja2 import TemplateSyntaxError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from steward._util.templates import render_messages, template_variables
from steward.errors import ConfigError
from steward.llm.providers import ChatRequest
from steward.model.lineage import code_version

__all__ = ["Message", "PromptFile", "PromptSpec", "file_commit", "parse_prompt", "read_prompt"]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "developer"]
    content: str


class PromptSpec(BaseModel):
    """The parsed prompt file."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    provider: str = "openai"
    model: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    variables: list[str] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    template: str | None = None
    output_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PromptSpec:
        if bool(self.messages) == (self.template is not None):
            raise ValueError(
                "give either 'messages' (a list of {role, content}) or 'template' (one user "
                "message), not both and not neither"
            )
        return self

    @property
    def chat(self) -> list[Message]:
        """The messages, with ``template`` as the one user message."""
        if self.template is not None:
            return [Message(role="user", content=self.template)]
        return list(self.messages)

    def render(self, variables: dict[str, Any]) -> list[dict[str, str]]:
        """The messages with the variables filled in; a declared variable left out is an error."""
        messages = [message.model_dump() for message in self.chat]
        return render_messages(messages, variables, self.variables)

    def request(self, variables: dict[str, Any]) -> ChatRequest:
        """The rendered prompt as a provider request, with the file's model and parameters."""
        return ChatRequest(
            messages=self.render(variables),
            model=self.model,
            parameters=dict(self.parameters),
            output_schema=self.output_schema,
        )


class PromptFile:
    """A prompt file as read from disk: its text, the SHA-256 of its bytes and the parsed spec."""

    def __init__(self, path: Path, data: bytes, spec: PromptSpec) -> None:
        self.path = path
        self.source = data.decode("utf-8")
        self.spec = spec
        self.sha256 = hashlib.sha256(data).hexdigest()


def parse_prompt(text: str, source: str) -> PromptSpec:
    """Validate a prompt file's text; errors name the file, the key and what to write."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: invalid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping with 'messages' or 'template' (see docs/prompts.md)"
        )
    try:
        spec = PromptSpec.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        reason = (
            "unknown key; the keys are description, provider, model, parameters, variables, "
            "messages, template and output_schema"
            if first["type"] == "extra_forbidden"
            else str(first["msg"]).removeprefix("Value error, ")
        )
        raise ConfigError(f"{source}: {where}: {reason}") from None
    _check_variables(spec, source)
    return spec


def _check_variables(spec: PromptSpec, source: str) -> None:
    """Every ``{{ name }}`` the messages use is declared in ``variables``, and the syntax parses."""
    used: set[str] = set()
    for index, message in enumerate(spec.chat):
        try:
            used |= template_variables(message.content)
        except TemplateSyntaxError as error:
            raise ConfigError(
                f"{source}: messages[{index}]: template syntax error on line {error.lineno}: "
                f"{error.message}"
            ) from None
    undeclared = sorted(used - set(spec.variables))
    if undeclared:
        raise ConfigError(
            f"{source}: the template uses {', '.join(undeclared)}, which 'variables' does not "
            f"list (it lists {', '.join(spec.variables) or 'nothing'}); add them to 'variables'"
        )


def read_prompt(path: Path) -> PromptFile:
    """Read and parse a prompt file."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"prompt file {path} does not exist; create it or fix 'file:' in steward.yaml"
        ) from None
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"prompt file {path} is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    return PromptFile(Path(path), data, parse_prompt(source, str(path)))


def file_commit(path: Path) -> dict[str, Any]:
    """The git commit of the folder holding ``path``, and whether the file differs from it."""
    found = code_version(path.parent)
    if not found.get("commit"):
        return {"commit": None, "dirty": None}
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        status = ""
    return {"commit": found["commit"], "dirty": bool(status.strip())}
