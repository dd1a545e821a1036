"""``steward.yaml``: the workspace's configuration as code.

The file lives in the user's git. ``load_config`` parses and validates it and, when it is wrong, says
where (file, line, column) and why; ``steward apply`` then loads it into the store.

>>> config = parse_config("systems:\\n  - {name: churn, task: binary}\\n")
>>> config.systems[0].task
'binary'
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from steward.errors import ConfigError, StewardError
from steward.plugins import plugin_manager

__all__ = [
    "CARD_FIELDS",
    "TEMPLATE",
    "BurnRateAlert",
    "CardConfig",
    "JudgeConfig",
    "MonitorsConfig",
    "NotifyConfig",
    "OutputMonitorConfig",
    "PlaybookConfig",
    "PriceEntry",
    "PromptConfig",
    "ProviderConfig",
    "RetrainConfig",
    "SLOConfig",
    "StewardConfig",
    "SystemConfig",
    "TrafficConfig",
    "load_config",
    "parse_config",
]

Task = Literal["binary", "multiclass", "regression", "llm"]
RiskTier = Literal["minimal", "low", "medium", "high"]


class CardConfig(BaseModel):
    """The narrative parts of a model card: what the registry cannot know and a person must write."""

    model_config = ConfigDict(extra="forbid")

    factors: str | None = None
    evaluation_data: str | None = None
    training_data: str | None = None
    quantitative_analyses: str | None = None
    ethical_considerations: str | None = None
    caveats: str | None = None


CARD_FIELDS = tuple(CardConfig.model_fields)


class TrafficConfig(BaseModel):
    """How live traffic is split: the share of entities (sticky by entity key) sent to ``canary``."""

    model_config = ConfigDict(extra="forbid")

    canary_share: float = Field(default=0.0, ge=0.0, le=1.0)


Indicator = Literal[
    "latency",
    "error_rate",
    "violation_rate",
    "drift",
    "roc_auc",
    "fnr",
    "precision",
    "estimated_roc_auc",
    "uplift",
    "cost",
    "daily_cost",
    "refusal_rate",
    "output_drift",
    "fairness",
]


class BurnRateAlert(BaseModel):
    """Alert when the burn rate over both windows exceeds ``burn_rate`` (the SRE workbook's pairs)."""

    model_config = ConfigDict(extra="forbid")

    long: str = Field(pattern=r"^[0-9]+[mhdw]$")
    short: str = Field(pattern=r"^[0-9]+[mhdw]$")
    burn_rate: float = Field(gt=0)
    severity: Literal["page", "ticket"] = "page"


class SLOConfig(BaseModel):
    """An objective on an indicator over a window, with an error budget and burn-rate alerts.

    Event indicators (``latency``, ``error_rate``, ``violation_rate``) count each prediction as good
    or bad (``latency`` is good at or under ``threshold`` milliseconds). Window indicators (the
    others) count each monitor window as good when its value meets ``threshold``. ``alerts`` left
    out means the SRE workbook's defaults scaled to ``window``: 14.4 over 1h/5m and 6 over 6h/30m
    (page), 1 over 3d/6h (ticket), for a 30-day window.

    ``daily_cost`` is a budget, not a share of good events: ``threshold`` dollars a day over
    ``window``, and it takes no ``objective`` (see ``steward.monitoring.slo``).
    """

    model_config = ConfigDict(extra="forbid")

    # Alerts on it are the rule "slo:NAME"; its evaluations are stored under NAME (decision 0005).
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,45}$")
    indicator: Indicator
    objective: float | None = Field(default=None, gt=0, lt=1)
    threshold: float | None = None
    window: str = Field(default="30d", pattern=r"^[0-9]+[mhdw]$")
    min_events: int = Field(default=100, ge=1)
    alerts: list[BurnRateAlert] | None = None

    @model_validator(mode="after")
    def _objective_fits_the_indicator(self) -> SLOConfig:
        if self.indicator == "daily_cost":
            if self.objective is not None:
                raise ValueError(
                    f"SLO {self.name!r}: daily_cost is a budget (threshold dollars a day over "
                    f"window) and takes no objective; remove objective: {self.objective}"
                )
            if self.threshold is None or self.threshold <= 0:
                raise ValueError(
                    f"SLO {self.name!r}: daily_cost needs a positive threshold, the budget in "
                    f"dollars a day (e.g. threshold: 25), got {self.threshold}"
                )
        elif self.objective is None:
            raise ValueError(
                f"SLO {self.name!r}: indicator {self.indicator!r} needs an objective between 0 "
                "and 1, the share of good events (e.g. objective: 0.99)"
            )
        return self


class NotifyConfig(BaseModel):
    """Where alerts go: a webhook (JSON, Slack-compatible), email addresses, or just the log."""

    model_config = ConfigDict(extra="forbid")

    webhook: str | None = None
    email: list[str] = Field(default_factory=list)
    retries: int = Field(default=3, ge=0, le=10)


class PlaybookConfig(BaseModel):
    """What to do when an alert fires on a rule matching ``when``: ``slo:NAME``, ``monitor:NAME``, ``*``.

    (Not ``on:``: YAML 1.1 reads a bare ``on`` as the boolean true.)
    """

    model_config = ConfigDict(extra="forbid")

    when: str
    do: list[str]
    suspend_mode: Literal["review", "fallback"] = "review"
    fallback_action: str | None = None
    #: For the step ``declare_incident``: the kind, which sets the EU AI Act Art. 73 clock.
    incident_kind: Literal["serious", "death", "widespread", "other"] = "serious"
    incident_severity: Literal["critical", "major", "minor"] = "major"

    @field_validator("do")
    @classmethod
    def _known_steps(cls, steps: list[str]) -> list[str]:
        known = [
            step.name
            for found in reversed(plugin_manager().hook.steward_playbook_steps())
            for step in found
        ]
        unknown = [step for step in steps if step not in known]
        if unknown:
            raise ValueError(
                f"unknown step {unknown[0]!r}; steps are {', '.join(known)} (plugins add more)"
            )
        return steps


class RetrainConfig(BaseModel):
    """The user's training command; ``{data}`` and ``{output}`` are filled in when it runs."""

    model_config = ConfigDict(extra="forbid")

    command: str
    window: str = Field(default="28d", pattern=r"^[0-9]+[mhdw]$")
    golden_set: str | None = None
    min_margin: float = Field(default=0.01, ge=0)
    timeout_seconds: int = Field(default=3600, ge=1)


class MonitorsConfig(BaseModel):
    """How often ``steward serve`` runs the monitors, and over which window."""

    model_config = ConfigDict(extra="forbid")

    window: str = Field(default="7d", pattern=r"^[0-9]+[mhdw]$")
    every: str = Field(default="1h", pattern=r"^[0-9]+[mhdw]$")
    segments: list[str] = Field(default_factory=list)


GapMeasure = Literal["demographic_parity_difference", "equalized_odds_difference"]


class FairnessConfig(BaseModel):
    """The ``fairness`` monitor: groups to watch and the gaps that are too large (docs/fairness.md).

    ``attributes`` are read from the protected attributes logged beside each prediction (sent
    with it, not model inputs), else from its inputs. A gap breaches when its whole
    interval lies above ``max_gap`` (a ratio: below ``min_ratio``), with a Bonferroni-adjusted
    confidence across attributes and measures.
    """

    model_config = ConfigDict(extra="forbid")

    attributes: list[str] = Field(min_length=1)
    measures: list[GapMeasure] = Field(default=["equalized_odds_difference"], min_length=1)
    max_gap: float = Field(default=0.1, gt=0, lt=1)
    #: The four-fifths rule: breach when the selection-rate ratio's interval lies below it.
    min_ratio: float | None = Field(default=None, gt=0, lt=1)
    min_group_size: int = Field(default=30, ge=5)
    confidence: float = Field(default=0.95, ge=0.5, lt=1)


class PromptConfig(BaseModel):
    """A prompt of an ``llm`` system: its file in the workspace and the eval set that gates it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    file: str
    evals: str | None = None


class ProviderConfig(BaseModel):
    """An LLM provider a prompt or the judge names: an OpenAI-compatible server, or ``echo``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["openai", "echo"] = "openai"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    model: str = ""


class PriceEntry(BaseModel):
    """A model's prices from ``valid_from`` on, in US dollars per million tokens.

    ``cached_input`` and ``cache_write`` default to the input rate, ``reasoning`` to the output
    rate (``steward.llm.cost``)."""

    model_config = ConfigDict(extra="forbid")

    valid_from: date | datetime
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)
    reasoning: float | None = Field(default=None, ge=0)


class OutputMonitorConfig(BaseModel):
    """How the ``llm_outputs`` monitor watches an ``llm`` system's answers (docs/llm.md)."""

    model_config = ConfigDict(extra="forbid")

    #: How long the reference is: the span just before the window (default: the window's own
    #: length), or, with ``reference_start``, the span from that moment on.
    reference_window: str | None = Field(default=None, pattern=r"^[0-9]*[1-9][0-9]*[mhdw]$")
    #: A fixed baseline's start (a date means 00:00 UTC); left out, the reference slides.
    reference_start: date | datetime | None = None
    #: Regular expressions (case-insensitive) added to the default refusal patterns.
    refusal_patterns: list[str] = Field(default_factory=list)
    #: Words or phrases counted in each answer, case-insensitive, whole words.
    keywords: list[str] = Field(default_factory=list)
    #: Answers should parse as JSON: adds the ``json_valid`` descriptor.
    json_expected: bool = False

    @field_validator("refusal_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not pattern.strip():
                raise ValueError(
                    "a refusal pattern is empty; remove it or write a regular expression"
                )
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(
                    f"refusal pattern {pattern!r} is not a valid regular expression ({error}); "
                    "escape special characters such as '(' or '?' with a backslash"
                ) from None
        return patterns

    @field_validator("keywords")
    @classmethod
    def _keywords_once(cls, keywords: list[str]) -> list[str]:
        seen: set[str] = set()
        for keyword in keywords:
            folded = " ".join(keyword.split()).casefold()
            if not folded:
                raise ValueError("a keyword is empty; remove it or write a word or phrase")
            if folded in seen:
                raise ValueError(
                    f"keyword {keyword!r} is listed twice (case is ignored); list it once"
                )
            seen.add(folded)
        return keywords


class JudgeConfig(BaseModel):
    """The provider that grades ``llm-rubric`` and ``similar`` assertions, and how often."""

    model_config = ConfigDict(extra="forbid")

    provider: str = "openai"
    model: str = ""
    repeats: int = Field(default=3, ge=1, le=15)


#: A high-risk system's logs are kept at least six months (EU AI Act Art. 19(1) and 26(6)).
RETENTION_FLOOR_DAYS: Final = 180


def retention_problem(system: str, risk_tier: str, days: int, where: str) -> str | None:
    """Why a retention period is under the floor of the system's risk tier, naming the article;
    None when it is not."""
    if risk_tier == "high" and days < RETENTION_FLOOR_DAYS:
        return (
            f"system {system!r} is high-risk: its logs must be kept at least "
            f"{RETENTION_FLOOR_DAYS} days (EU AI Act Art. 19(1) and 26(6)), but {where} is "
            f"{days}; set retention_days: {RETENTION_FLOOR_DAYS} or more"
        )
    return None


class SystemConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    task: Task
    owner: str = ""
    risk_tier: RiskTier = "medium"
    intended_use: str = ""
    target: str = ""
    entity_key: str = ""
    card: CardConfig = Field(default_factory=CardConfig)
    contract: dict[str, Any] | None = None
    policy: dict[str, Any] | None = None
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)
    monitors: MonitorsConfig = Field(default_factory=MonitorsConfig)
    slos: list[SLOConfig] = Field(default_factory=list)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    playbooks: list[PlaybookConfig] = Field(default_factory=list)
    retrain: RetrainConfig | None = None
    #: Aliases that, once set, move only through an approval another person decides (or a
    #: rollback to the version that held them before), e.g. ``[champion]``.
    protected_aliases: list[str] = Field(default_factory=list)
    #: Prompts of an ``llm`` system, registered by ``steward apply`` (``docs/prompts.md``).
    prompts: list[PromptConfig] = Field(default_factory=list)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    judge: JudgeConfig | None = None
    #: Prompt labels that, once set, move only through an approval (or a rollback).
    protected_labels: list[str] = Field(default_factory=list)
    #: What logged LLM calls keep of their input and output texts (docs/llm.md).
    call_text: Literal["keep", "hash", "drop"] = "keep"
    #: Prices per model in US dollars per million tokens, each from a date, overriding and
    #: extending the shipped table: ``{model: [{valid_from, input, cached_input, output}, ...]}``.
    prices: dict[str, list[PriceEntry]] = Field(default_factory=dict)
    #: The output monitor's reference, refusal patterns, keywords and JSON expectation.
    outputs: OutputMonitorConfig | None = None
    #: The fairness monitor's protected attributes and gap limits.
    fairness: FairnessConfig | None = None
    #: Days this system's logged events are kept; unset, the workspace's ``retention_days``. A
    #: high-risk system keeps at least ``RETENTION_FLOOR_DAYS`` (EU AI Act Art. 19(1), 26(6)).
    retention_days: int | None = Field(default=None, ge=1, le=36500)

    @model_validator(mode="after")
    def _retention_meets_the_floor(self) -> SystemConfig:
        if self.retention_days is not None:
            problem = retention_problem(
                self.name, self.risk_tier, self.retention_days, "its retention_days"
            )
            if problem:
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _prompts_belong_to_llm_systems(self) -> SystemConfig:
        if (self.prompts or self.outputs) and self.task != "llm":
            raise ValueError(
                f"system {self.name!r} has task {self.task!r}; only a system of task 'llm' has "
                "prompts and outputs (set task: llm, or move them to an llm system)"
            )
        for model, entries in self.prices.items():
            starts = [entry.valid_from for entry in entries]
            if [str(start) for start in starts] != sorted(str(start) for start in set(starts)):
                raise ValueError(
                    f"prices of {model!r}: list the entries oldest first, one per valid_from "
                    f"(got {', '.join(str(start) for start in starts)})"
                )
        names = [prompt.name for prompt in self.prompts]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"prompt {twice[0]!r} is declared twice; prompt names must be unique")
        return self


class StewardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    systems: list[SystemConfig] = Field(default_factory=list)


TEMPLATE = """\
# steward.yaml: the systems Steward looks after, kept in git with your code.
# `steward apply` loads this file into the store and records each change in the audit log.
version: 1

systems:
  - name: churn                      # letters, digits, '.', '_' or '-'
    task: binary                     # binary | multiclass | regression | llm
    owner: you@example.com           # who answers for this system
    risk_tier: medium                # minimal | low | medium | high
    intended_use: >-
      Rank customers by their risk of leaving, so that the retention team calls the riskiest first.
    target: Churn                    # the column that holds the truth in training data
    entity_key: customerID           # the id that ties a prediction to its later outcome

    # The narrative of the model card. The registry fills in the facts (versions, lineage,
    # metrics); these are the parts only a person can write. Left out, they show as missing.
    card:
      factors: Customer tenure, contract type and payment method.
      # evaluation_data: ...
      # training_data: ...
      # quantitative_analyses: ...
      # ethical_considerations: ...
      # caveats: ...
"""


def load_config(path: Path) -> StewardConfig:
    """Read and validate ``path``; errors name the file, line and column."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist; run `steward init` to create one, or pass --workspace"
        ) from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "steward.yaml") -> StewardConfig:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        line = (
            text.splitlines()[mark.line].rstrip()
            if mark and mark.line < text.count("\n") + 1
            else ""
        )
        shown = f" in the line {line.strip()!r}" if line.strip() else ""
        raise ConfigError(
            f"{where}: invalid YAML{shown}: {_plain_yaml_problem(error.problem or '')} "
            f"(the parser said: {error.problem})"
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1:1: expected a mapping with a 'systems' list at the top")
    try:
        config = StewardConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = tuple(first["loc"])
        raise ConfigError(
            f"{_where(source, node, location)}: {_dotted(location)}: {_reason(first)}"
        ) from None
    _check_unique_names(config, source, node)
    _check_contracts_and_policies(config, source, node)
    return config


_YAML_PROBLEMS = (
    (
        "expected <block end>",
        "this line is indented differently from the lines around it; line it up with the other "
        "keys of the same item (YAML counts the spaces)",
    ),
    (
        "mapping values are not allowed",
        "a ':' where a plain value was expected; quote the value, or start a new line for the key",
    ),
    ("found character '\\t'", "a tab; indent YAML with spaces only"),
    ("could not find expected ':'", "a line without 'key: value'; add the colon or quote the text"),
    (
        "expected <block mapping start>",
        "a list item or value where a 'key: value' line was expected; check the indentation",
    ),
    ("found unexpected end of stream", "the file ends inside a quote or bracket; close it"),
    ("found duplicate anchor", "an anchor (&name) is defined twice; rename one"),
    ("found undefined alias", "an alias (*name) refers to no anchor; define it with &name first"),
)


def _plain_yaml_problem(problem: str) -> str:
    """A sentence a person can act on for the YAML parser's terse ``problem``."""
    for found, sentence in _YAML_PROBLEMS:
        if problem.startswith(found) or found in problem:
            return sentence
    return "the file is not valid YAML here; check the indentation, colons and quotes"


def _check_contracts_and_policies(
    config: StewardConfig, source: str, node: yaml.Node | None
) -> None:
    """Validate each ``contract:`` and ``policy:`` with their own modules, located in the file."""
    from steward.data.contracts import Contract
    from steward.model.policy import Policy

    for index, system in enumerate(config.systems):
        for key, build in (
            ("contract", lambda data, name: Contract.from_dict(data, name=name)),
            ("policy", lambda data, name: Policy.from_dict(data)),
        ):
            data = getattr(system, key)
            if data is None:
                continue
            try:
                built = build(data, system.name)
                if key == "contract":
                    _check_personal_key(built, system.entity_key)
            except StewardError as error:
                location = ("systems", index, key)
                raise ConfigError(
                    f"{_where(source, node, location)}: {_dotted(location)}: {error}"
                ) from None


def _check_personal_key(contract: Any, entity_key: str) -> None:
    """Refuse a personal-data marking on the entity key: erasure and outcome joins find a
    person's rows by the key as logged, so it must be stored as sent."""
    if entity_key and entity_key in contract.personal:
        raise ConfigError(
            f"column {entity_key!r} is the system's entity_key and cannot be marked "
            f"'personal: {contract.personal[entity_key]}': erasure and outcomes find a person's "
            "predictions by the key as logged; remove the marking, or key the system by an id "
            "that is not personal data"
        )


def _check_unique_names(config: StewardConfig, source: str, node: yaml.Node | None) -> None:
    seen: dict[str, int] = {}
    for index, system in enumerate(config.systems):
        if system.name in seen:
            location = ("systems", index, "name")
            raise ConfigError(
                f"{_where(source, node, location)}: {_dotted(location)}: system {system.name!r} is "
                f"declared twice (first as systems[{seen[system.name]}]); names must be unique"
            )
        seen[system.name] = index


def _reason(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key; check the spelling against the commented template from `steward init`"
    if error["type"] == "missing":
        return "required, but missing"
    if error["type"] == "value_error":  # a validator's own sentence, already naming the value
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{error['msg']} (got {error.get('input')!r})"


def _dotted(location: tuple[Any, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _where(source: str, node: yaml.Node | None, location: tuple[Any, ...]) -> str:
    """The file:line:column of the deepest YAML node on ``location`` that exists."""
    found = node
    for part in location:
        child = _child(found, part)
        if child is None:
            break
        found = child
    if found is None:
        return source
    mark = found.start_mark
    return f"{source}:{mark.line + 1}:{mark.column + 1}"


def _child(node: yaml.Node | None, part: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                return value
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None
