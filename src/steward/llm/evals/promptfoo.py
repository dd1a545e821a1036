"""promptfoo configurations, read and run with Steward's eval engine.

A team that already has a ``promptfooconfig.yaml`` can gate on it unchanged: ``description``,
``prompts`` (inline text, ``file://`` text files split on ``---`` lines, JSON or YAML chat-message
files, globs, ``{id|raw, label}`` mappings), ``providers`` (``echo``, ``openai:chat:MODEL`` or
mappings with ``id``, ``label``, ``config`` and a ``prompts`` filter), ``tests`` (inline, or
``file://`` CSV, YAML, JSON or JSONL files) and ``defaultTest`` (``vars``, ``assert``, ``threshold``,
and ``options.provider`` as the judge). Prompts render with jinja2, close to promptfoo's nunjucks.

What Steward cannot run is reported skipped with the reason, never passed: an assertion type it
lacks (``javascript``, ``factuality``...), a provider other than echo or OpenAI-compatible ones, a
prompt written as code.

>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "promptfooconfig.yaml").write_text(
...     "prompts: ['Say hi to {{name}}']\\nproviders: [echo]\\n"
...     "tests:\\n  - vars: {name: Ada}\\n    assert: [{type: icontains, value: ada}]\\n")
>>> [run] = run_promptfoo(folder / "promptfooconfig.yaml")
>>> run.n_passed, run.cases[0].output
(1, 'Say hi to Ada')
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from steward.errors import ConfigError, InvalidInputError, StewardError
from steward.llm.evals.assertions import render_template
from steward.llm.evals.cases import EvalSet, parse_cases, read_csv_cases
from steward.llm.evals.judges import DEFAULT_REPEATS, NO_JUDGE_REASON, JudgePool
from steward.llm.evals.runner import EvalResult, run_eval, skipped_run
from steward.llm.providers import ChatRequest, make_provider

__all__ = [
    "REQUEST_PARAMETERS",
    "PromptfooConfig",
    "PromptfooPrompt",
    "PromptfooProvider",
    "load_promptfoo",
    "run_promptfoo",
]

#: Keys of an OpenAI provider's ``config`` that are sent with each request.
REQUEST_PARAMETERS: Final = (
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "stop",
)
_TEXT_SUFFIXES: Final = (".txt", ".md", ".j2", ".jinja", ".jinja2", ".prompt", "")
_CODE_SUFFIXES: Final = (".py", ".js", ".ts", ".mjs", ".cjs", ".sh", ".rb")
_DEFAULT_PROMPT: Final = "{{prompt}}"  # promptfoo's passthrough when no prompts are given


@dataclass(frozen=True)
class PromptfooPrompt:
    """A prompt template: text (sent as one user message) or chat messages."""

    label: str
    template: str | list[dict[str, str]]
    #: Why Steward cannot render it (a prompt written as code); its runs are skipped.
    unsupported: str | None = None

    def messages(self, variables: Mapping[str, Any]) -> list[dict[str, str]]:
        """The chat messages with ``{{ var }}`` rendered."""
        if isinstance(self.template, str):
            return [{"role": "user", "content": render_template(self.template, variables)}]
        return [
            {"role": message["role"], "content": render_template(message["content"], variables)}
            for message in self.template
        ]


@dataclass(frozen=True)
class PromptfooProvider:
    """A provider entry: its promptfoo id, label, how to build it and its request parameters."""

    id: str
    label: str
    spec: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    #: promptfoo's per-provider ``prompts:`` filter (labels); None runs every prompt.
    prompts: list[str] | None = None
    unsupported: str | None = None

    def runs(self, prompt: PromptfooPrompt) -> bool:
        """Whether this provider runs ``prompt`` (exact label, ``group`` prefix or ``group:*``)."""
        if self.prompts is None:
            return True
        return any(_label_matches(prompt.label, wanted) for wanted in self.prompts)


@dataclass(frozen=True)
class PromptfooConfig:
    """A loaded promptfoo configuration; ``judge`` is ``defaultTest.options.provider``, if any."""

    path: Path
    description: str
    prompts: list[PromptfooPrompt]
    providers: list[PromptfooProvider]
    eval_set: EvalSet
    judge: Any = None


def load_promptfoo(path: str | Path) -> PromptfooConfig:
    """Read a promptfoo configuration file (or a folder holding ``promptfooconfig.yaml``)."""
    file = Path(path)
    if file.is_dir():
        file = file / "promptfooconfig.yaml"
    if not file.is_file():
        raise InvalidInputError(f"promptfoo configuration {file}: no such file")
    raw = file.read_bytes()
    try:
        document = yaml.safe_load(raw.decode("utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"promptfoo configuration {file}: not valid UTF-8 YAML: {error}"
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(
            f"promptfoo configuration {file}: expected a mapping with prompts, providers, tests"
        )
    base = file.parent
    where = f"promptfoo configuration {file}"
    defaults = _default_test(document.get("defaultTest"), base, where)
    tests, test_bytes = _tests(document.get("tests"), base, where)
    digest = hashlib.sha256(raw + b"".join(test_bytes)).hexdigest()
    description = str(document.get("description") or "")
    cases = parse_cases(
        [expanded for test in tests for expanded in _expand_vars(test, base, where)],
        source=str(file),
        base_dir=base,
        defaults={key: value for key, value in defaults.items() if key != "options"},
        strict=False,
    )
    options = defaults.get("options") or {}
    return PromptfooConfig(
        path=file,
        description=description,
        prompts=_prompts(document.get("prompts"), base, where),
        providers=_providers(document.get("providers"), where),
        eval_set=EvalSet(name=description or file.stem, cases=cases, sha256=digest, path=file),
        judge=options.get("provider") if isinstance(options, dict) else None,
    )


def run_promptfoo(
    path: str | Path,
    *,
    judge: Any = None,
    provider_overrides: Mapping[str, Any] | None = None,
    repeats: int = DEFAULT_REPEATS,
    progress: Callable[[int, int], None] | None = None,
) -> list[EvalResult]:
    """Run each prompt x provider of a promptfoo configuration; one :class:`EvalResult` each.

    ``provider_overrides`` maps a provider id or label from the configuration to a ready provider
    (a fake server in tests, a gateway in CI). ``judge`` grades ``llm-rubric`` and ``similar``;
    without it, ``defaultTest.options.provider`` is tried, else judged assertions are skipped.
    """
    config = load_promptfoo(path)
    overrides = dict(provider_overrides or {})
    judges = _judge_pool(judge, config.judge)
    results = []
    for prompt in config.prompts:
        for entry in config.providers:
            if not entry.runs(prompt):
                continue
            label = f"{prompt.label} | {entry.label}"
            provider, reason = None, prompt.unsupported
            if reason is None:
                provider, reason = _provider(entry, overrides)
            if reason is not None:
                results.append(skipped_run(config.eval_set, entry.id, reason, label=label))
                continue
            render = _renderer(prompt, entry)
            results.append(
                run_eval(
                    config.eval_set,
                    render,
                    provider,
                    judge=judges,
                    repeats=repeats,
                    progress=progress,
                    label=label,
                )
            )
    return results


def _renderer(
    prompt: PromptfooPrompt, entry: PromptfooProvider
) -> Callable[[dict[str, Any]], ChatRequest]:
    def render(variables: dict[str, Any]) -> ChatRequest:
        return ChatRequest(messages=prompt.messages(variables), parameters=dict(entry.parameters))

    return render


def _provider(entry: PromptfooProvider, overrides: Mapping[str, Any]) -> tuple[Any, str | None]:
    for key in (entry.id, entry.label):
        if key in overrides:
            return overrides[key], None
    if entry.unsupported is not None:
        return None, entry.unsupported
    try:
        return make_provider(entry.spec), None
    except StewardError as error:
        return None, f"provider {entry.id!r} cannot be built here: {error}"


def _judge_pool(judge: Any, spec: Any) -> JudgePool:
    if judge is not None or spec is None:
        return judge if isinstance(judge, JudgePool) else JudgePool(judge)
    try:
        return JudgePool(make_provider(spec))
    except StewardError as error:
        return JudgePool(unavailable=f"{NO_JUDGE_REASON} (defaultTest.options.provider: {error})")


def _label_matches(label: str, wanted: str) -> bool:
    if wanted.endswith("*"):
        return label.startswith(wanted[:-1])
    return label == wanted or label.startswith(f"{wanted}:")


def _load_structured(path: Path, where: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() == ".json":
            return json.loads(text)
        if path.suffix.lower() == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{where}: cannot read {path}: {error}") from None


def _files(reference: str, base: Path, where: str) -> list[Path]:
    """The files a ``file://`` reference names (globs expanded), relative to the config's folder."""
    pattern = reference.removeprefix("file://")
    if any(char in pattern for char in "*?["):
        found = sorted(Path(name) for name in glob.glob(str(base / pattern), recursive=True))
        if not found:
            raise ConfigError(f"{where}: {reference!r} matches no file (relative to {base})")
        return found
    path = base / pattern
    if not path.is_file():
        raise ConfigError(
            f"{where}: no file {path}; file:// paths are relative to the configuration's folder"
        )
    return [path]


def _default_test(value: Any, base: Path, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str) and value.startswith("file://"):
        value = _load_structured(_files(value, base, f"{where}: defaultTest")[0], where)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: defaultTest must be a mapping with vars, assert and options")
    return value


def _tests(value: Any, base: Path, where: str) -> tuple[list[Any], list[bytes]]:
    """Raw test mappings from ``tests:``, and the bytes of the files they came from."""
    if value is None:
        return [{}], []  # promptfoo runs each prompt once with no vars
    items = value if isinstance(value, list) else [value]
    tests: list[Any] = []
    read: list[bytes] = []
    for item in items:
        if isinstance(item, dict):
            tests.append(item)
        elif isinstance(item, str) and item.startswith("file://"):
            for path in _files(item, base, f"{where}: tests"):
                read.append(path.read_bytes())
                tests.extend(_test_file(path, where))
        else:
            raise ConfigError(
                f"{where}: tests entry {item!r} is neither a test mapping nor a file:// path "
                "(Steward reads CSV, YAML, JSON and JSONL test files)"
            )
    return tests, read


def _test_file(path: Path, where: str) -> list[Any]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv_cases(path.read_text(encoding="utf-8-sig"), source=str(path))
    if suffix in (".yaml", ".yml", ".json", ".jsonl"):
        loaded = _load_structured(path, where)
        return loaded if isinstance(loaded, list) else [loaded]
    raise ConfigError(
        f"{where}: cannot read tests from {path} ({suffix or 'no extension'}); "
        "Steward reads .csv, .yaml, .yml, .json and .jsonl test files"
    )


def _expand_vars(test: Any, base: Path, where: str) -> list[Any]:
    """promptfoo's var handling: ``file://`` values are read, and a list value runs the test once
    per element (every combination when several vars are lists)."""
    if not isinstance(test, dict) or not isinstance(test.get("vars"), dict):
        return [test]
    variables = {name: _var_value(value, base, where) for name, value in test["vars"].items()}
    listed = [name for name, value in variables.items() if isinstance(value, list)]
    if not listed:
        return [{**test, "vars": variables}]
    expanded = []
    for combination in itertools.product(*(variables[name] for name in listed)):
        chosen = dict(zip(listed, combination, strict=True))
        suffix = ", ".join(f"{name}={value}" for name, value in chosen.items())
        named = {key: f"{test[key]} [{suffix}]" for key in ("id", "description") if test.get(key)}
        expanded.append({**test, **named, "vars": {**variables, **chosen}})
    return expanded


def _var_value(value: Any, base: Path, where: str) -> Any:
    if isinstance(value, str) and value.startswith("file://"):
        path = _files(value, base, f"{where}: vars")[0]
        if path.suffix.lower() in (".json", ".yaml", ".yml"):
            return _load_structured(path, where)
        return path.read_text(encoding="utf-8")
    return value


def _prompts(value: Any, base: Path, where: str) -> list[PromptfooPrompt]:
    if value is None:
        return [PromptfooPrompt(label=_DEFAULT_PROMPT, template=_DEFAULT_PROMPT)]
    items = value if isinstance(value, list) else [value]
    prompts: list[PromptfooPrompt] = []
    for item in items:
        if isinstance(item, str):
            prompts.extend(_prompt_text(item, None, base, where))
        elif isinstance(item, dict) and isinstance(item.get("raw", item.get("id")), str):
            label = str(item["label"]) if item.get("label") else None
            prompts.extend(_prompt_text(str(item.get("raw", item.get("id"))), label, base, where))
        else:
            raise ConfigError(
                f"{where}: prompt {item!r} is not text, a file:// path, or a mapping with raw/id and label"
            )
    return prompts


def _prompt_text(text: str, label: str | None, base: Path, where: str) -> list[PromptfooPrompt]:
    if not text.startswith("file://"):
        chat = _chat_messages(text)
        shown = label or (text.strip().splitlines() or [""])[0][:60]
        return [PromptfooPrompt(label=shown, template=chat if chat is not None else text)]
    reference = text
    for suffix in _CODE_SUFFIXES:  # file://prompt.py:function_name names a function in the file
        if f"{suffix}:" in reference:
            reference = reference.split(f"{suffix}:")[0] + suffix
    prompts = []
    for path in _files(reference, base, where):
        shown = label or _relative(path, base)
        prompts.extend(_prompt_file(path, shown, where))
    return prompts


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _prompt_file(path: Path, label: str, where: str) -> list[PromptfooPrompt]:
    suffix = path.suffix.lower()
    if suffix in _CODE_SUFFIXES:
        reason = f"prompt {label!r} is code ({suffix}); Steward renders only text and chat-message prompts"
        return [PromptfooPrompt(label=label, template="", unsupported=reason)]
    if suffix in (".json", ".yaml", ".yml"):
        loaded = _load_structured(path, where)
        messages = _chat_list(loaded)
        if messages is None:
            raise ConfigError(
                f"{where}: prompt file {path} must hold a list of chat messages "
                '([{"role": "system", "content": "..."}, ...])'
            )
        return [PromptfooPrompt(label=label, template=messages)]
    if suffix not in _TEXT_SUFFIXES:
        raise ConfigError(
            f"{where}: cannot read the prompt file {path}; use text (.txt, .md, .j2) "
            "or chat messages (.json, .yaml)"
        )
    text = path.read_text(encoding="utf-8-sig")
    parts = _split_prompts(text) if suffix == ".txt" else [text]
    if len(parts) == 1:
        return [PromptfooPrompt(label=label, template=parts[0])]
    return [
        PromptfooPrompt(label=f"{label}:{n}", template=part)
        for n, part in enumerate(parts, start=1)
    ]


def _split_prompts(text: str) -> list[str]:
    """A text file's prompts: promptfoo separates several with lines holding only ``---``."""
    parts: list[str] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.strip() == "---":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(line)
    parts.append("".join(current).strip() if parts else "".join(current))
    return [part for part in parts if part.strip()] or [text]


def _chat_messages(text: str) -> list[dict[str, str]] | None:
    if not text.lstrip().startswith("["):
        return None
    try:
        return _chat_list(json.loads(text))
    except json.JSONDecodeError:
        return None


def _chat_list(value: Any) -> list[dict[str, str]] | None:
    if not isinstance(value, list) or not value:
        return None
    if not all(
        isinstance(item, dict)
        and isinstance(item.get("role"), str)
        and isinstance(item.get("content"), str)
        for item in value
    ):
        return None
    return [{"role": item["role"], "content": item["content"]} for item in value]


def _providers(value: Any, where: str) -> list[PromptfooProvider]:
    if value is None:
        raise ConfigError(
            f"{where}: no providers; add e.g. 'providers: [echo]' or 'openai:chat:gpt-4o-mini'"
        )
    items = value if isinstance(value, list) else [value]
    return [_provider_entry(item, where) for item in items]


def _provider_entry(item: Any, where: str) -> PromptfooProvider:
    if isinstance(item, str):
        return _provider_from(item, {}, item, None)
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        options = item
        return _provider_from(
            item["id"], options.get("config") or {}, options.get("label"), options.get("prompts")
        )
    if isinstance(item, dict) and len(item) == 1:
        # promptfoo's map form: {"openai:gpt-4o-mini": {config: ..., label: ...}}
        [(name, options)] = item.items()
        options = options if isinstance(options, dict) else {}
        return _provider_from(
            str(name), options.get("config") or {}, options.get("label"), options.get("prompts")
        )
    raise ConfigError(
        f"{where}: provider {item!r} is not a name (echo, openai:chat:MODEL) or a mapping with 'id'"
    )


def _provider_from(
    name: str, config: Mapping[str, Any], label: Any, prompts: Any
) -> PromptfooProvider:
    shown = str(label) if label else name
    wanted = [str(entry) for entry in prompts] if isinstance(prompts, list) else None
    if name == "echo":
        return PromptfooProvider(id=name, label=shown, spec={"id": "echo"}, prompts=wanted)
    if name == "openai" or (name.startswith("openai:") and not name.startswith("openai:embedding")):
        spec = {
            "id": name,
            "config": dict(config),
            "api_key_env": config.get("apiKeyEnvar", "OPENAI_API_KEY"),
        }
        parameters = {key: config[key] for key in REQUEST_PARAMETERS if key in config}
        return PromptfooProvider(
            id=name, label=shown, spec=spec, parameters=parameters, prompts=wanted
        )
    reason = (
        f"provider {name!r} is not one Steward runs (echo, openai:chat:MODEL, openai:MODEL); "
        "pass a ready provider for it in provider_overrides"
    )
    return PromptfooProvider(id=name, label=shown, prompts=wanted, unsupported=reason)
