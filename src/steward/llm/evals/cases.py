"""Eval sets: the cases an LLM system must pass, read from YAML, JSONL or promptfoo-style CSV.

A case gives the variables a prompt is rendered with and the assertions its answer must meet, in
promptfoo's vocabulary (``assert:``, ``type:``, ``value:``, ``weight:``, ``threshold:``), so a
promptfoo test file loads unchanged::

    default:                        # or promptfoo's defaultTest: merged into every case
      assert: [{type: not-icontains, value: "as an AI"}]
    cases:
      - id: greets-by-name
        vars: {name: Ada}
        assert:
          - {type: contains, value: Ada}
          - {type: word-count, value: {max: 40}}
        critical: true
      - vars: {name: Bob}
        expected: "Hello Bob"       # shorthand for an equals assertion

Loading checks every assertion's type and value up front, so a typo fails the load with the file,
the case and the key, not the first run in CI.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> text = "- vars: {name: Ada}\\n  assert: [{type: contains, value: Ada}]\\n"
>>> _ = (folder / "greet.yaml").write_text(text)
>>> eval_set = load_eval_set(folder / "greet.yaml")
>>> eval_set.name, eval_set.cases[0].id, eval_set.cases[0].assertions[0].type
('greet', 'case-1', 'contains')
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import yaml

from steward.errors import InvalidInputError

__all__ = [
    "ASSERTION_KEYS",
    "CASE_KEYS",
    "DETERMINISTIC_TYPES",
    "JUDGE_TYPES",
    "KNOWN_TYPES",
    "PROMPTFOO_ONLY_TYPES",
    "Assertion",
    "EvalCase",
    "EvalSet",
    "case_from_mapping",
    "load_eval_set",
    "parse_assertion_string",
    "parse_cases",
    "read_csv_cases",
    "validate_assertion",
]

# fmt: off
#: Assertions Steward checks itself, with promptfoo's semantics; each may be prefixed ``not-``.
DETERMINISTIC_TYPES: Final = (
    "equals", "contains", "icontains", "contains-any", "contains-all", "icontains-any",
    "icontains-all", "starts-with", "regex", "is-json", "word-count", "levenshtein", "latency",
    "cost", "python",
)
#: Assertions that need a judge provider (a model), repeated to measure its consistency.
JUDGE_TYPES: Final = ("llm-rubric", "similar")
KNOWN_TYPES: Final = DETERMINISTIC_TYPES + JUDGE_TYPES
#: promptfoo assertion types Steward does not run; a promptfoo configuration using one still loads,
#: and the assertion is reported skipped (never passed).
PROMPTFOO_ONLY_TYPES: Final = (
    "answer-relevance", "assert-set", "bleu", "classifier", "contains-html", "contains-json",
    "contains-sql", "contains-xml", "context-faithfulness", "context-recall", "context-relevance",
    "conversation-relevance", "factuality", "finish-reason", "g-eval", "gleu", "guardrails",
    "is-html", "is-refusal", "is-sql", "is-valid-function-call", "is-valid-openai-function-call",
    "is-valid-openai-tools-call", "is-xml", "javascript", "max-score", "meteor",
    "model-graded-closedqa", "model-graded-factuality", "moderation", "perplexity",
    "perplexity-score", "pi", "rouge-n", "ruby", "select-best", "similar:cosine", "similar:dot",
    "similar:euclidean", "tool-call-f1", "webhook",
)
CASE_KEYS: Final = (
    "id", "description", "vars", "assert", "assertions", "expected", "critical", "threshold",
    "metadata", "options",
)
ASSERTION_KEYS: Final = ("type", "value", "weight", "threshold", "provider", "metric", "config")
_DEFAULT_KEYS: Final = (
    "vars", "assert", "assertions", "threshold", "critical", "metadata", "options",
)
# fmt: on
_TEXT_VALUE_TYPES: Final = ("contains", "icontains", "starts-with")
_LIST_VALUE_TYPES: Final = ("contains-any", "contains-all", "icontains-any", "icontains-all")
_CSV_SPECIAL: Final = ("__description", "__critical", "__threshold", "__metric", "__id")
_TRUE_WORDS: Final = ("true", "yes", "y", "1")
_FALSE_WORDS: Final = ("false", "no", "n", "0", "")


@dataclass(frozen=True)
class Assertion:
    """One check on an answer, as promptfoo writes it (``type: not-contains``, ``value: sorry``)."""

    type: str
    value: Any = None
    weight: float = 1.0
    threshold: float | None = None
    #: The judge to use instead of the run's (a provider name or mapping, as in promptfoo).
    provider: Any = None
    metric: str | None = None
    #: Passed to ``python`` assertions as ``context["config"]``, as promptfoo does.
    config: dict[str, Any] = field(default_factory=dict)
    #: Why Steward cannot run this assertion (a promptfoo feature it lacks); it is reported skipped.
    unsupported: str | None = None

    @property
    def inverse(self) -> bool:
        """True for a ``not-`` assertion."""
        return self.type.startswith("not-")

    @property
    def base_type(self) -> str:
        """The type without its ``not-`` prefix."""
        return self.type[4:] if self.inverse else self.type

    def to_dict(self) -> dict[str, Any]:
        """The assertion as JSON-safe data, keys as promptfoo names them."""
        data: dict[str, Any] = {"type": self.type, "value": self.value, "weight": self.weight}
        optional = {
            "threshold": self.threshold,
            "provider": self.provider,
            "metric": self.metric,
            "config": self.config or None,
            "unsupported": self.unsupported,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        return data


@dataclass(frozen=True)
class EvalCase:
    """One case: the variables to render the prompt with and what the answer must meet.

    ``critical`` cases fail a gate on their own, whatever the pass rate. ``threshold`` is promptfoo's
    test threshold: with it, the case passes when its weighted assertion score reaches it.
    """

    id: str
    description: str = ""
    vars: dict[str, Any] = field(default_factory=dict)
    assertions: list[Assertion] = field(default_factory=list)
    critical: bool = False
    threshold: float | None = None


@dataclass(frozen=True)
class EvalSet:
    """A named list of cases and the SHA-256 of the bytes they were read from."""

    name: str
    cases: list[EvalCase]
    sha256: str
    path: Path | None = None

    @property
    def base_dir(self) -> Path:
        """The folder ``file://`` references in the set are resolved against."""
        return self.path.parent if self.path is not None else Path.cwd()


def load_eval_set(path: str | Path, *, base_dir: str | Path | None = None) -> EvalSet:
    """Read an eval set from a YAML (or JSON), JSONL or CSV file.

    YAML holds a list of cases, or a mapping with ``cases:`` and an optional ``default:`` (or
    promptfoo's ``defaultTest:``) whose ``vars`` and ``assert`` merge into every case; JSONL holds
    one case per line; CSV follows promptfoo (columns are vars, ``__expected``, ``__expected1``...
    hold assertions such as ``contains:foo``, plus ``__description``, ``__threshold``, ``__metric``
    and ``__critical``). ``file://`` references resolve against ``base_dir`` (the file's folder).
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(
            f"eval set {file}: no such file; give the path of a .yaml, .jsonl or .csv file"
        )
    data = file.read_bytes()
    folder = Path(base_dir) if base_dir is not None else file.parent
    source = str(file)
    text = _decode(data, source)
    suffix = file.suffix.lower()
    if suffix in (".yaml", ".yml", ".json"):
        name, raw_cases, defaults = _structured_cases(text, source, suffix)
    elif suffix == ".jsonl":
        name, raw_cases, defaults = file.stem, _jsonl_cases(text, source), None
    elif suffix == ".csv":
        name, raw_cases, defaults = file.stem, read_csv_cases(text, source=source), None
    else:
        raise InvalidInputError(
            f"eval set {file}: cannot read {suffix or 'a file without extension'}; "
            "write it as .yaml, .yml, .json, .jsonl or .csv"
        )
    cases = parse_cases(raw_cases, source=source, base_dir=folder, defaults=defaults, strict=True)
    return EvalSet(
        name=name or file.stem, cases=cases, sha256=hashlib.sha256(data).hexdigest(), path=file
    )


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInputError(
            f"eval set {source}: not UTF-8 text (byte {error.start}); save the file as UTF-8"
        ) from None


def _structured_cases(
    text: str, source: str, suffix: str
) -> tuple[str | None, list[Any], Mapping[str, Any] | None]:
    try:
        document = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        raise InvalidInputError(
            f"eval set {source}: not valid {suffix[1:].upper()}: {error}"
        ) from None
    if isinstance(document, list):
        return None, document, None
    if not isinstance(document, dict) or "cases" not in document:
        raise InvalidInputError(
            f"eval set {source}: expected a list of cases, or a mapping with 'cases:' "
            f"(and optionally 'name:' and 'default:'), got {type(document).__name__}"
        )
    # ``gate:`` holds the eval gate's thresholds; ``steward.llm.gate`` reads it.
    known = {"name", "description", "cases", "default", "defaultTest", "gate"}
    unknown = sorted(set(document) - known)
    if unknown:
        raise InvalidInputError(
            f"eval set {source}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
            "known: name, description, cases, default (or defaultTest), gate"
        )
    if not isinstance(document["cases"], list):
        raise InvalidInputError(f"eval set {source}: 'cases:' must be a list of cases")
    defaults = document.get("default", document.get("defaultTest"))
    if defaults is not None and not isinstance(defaults, dict):
        raise InvalidInputError(
            f"eval set {source}: 'default:' must be a mapping with 'vars:' and/or 'assert:'"
        )
    name = document.get("name")
    return (str(name) if name is not None else None), document["cases"], defaults


def _jsonl_cases(text: str, source: str) -> list[Any]:
    cases = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise InvalidInputError(
                f"eval set {source}: line {number} is not valid JSON ({error.msg}); "
                "write one JSON object per line"
            ) from None
    return cases


def read_csv_cases(text: str, *, source: str) -> list[dict[str, Any]]:
    """Cases from promptfoo-style CSV text, as raw mappings ready for :func:`parse_cases`.

    Columns are vars except ``__expected``/``__expectedN`` (one assertion each, in promptfoo's
    string syntax), ``__description``, ``__id``, ``__threshold``, ``__metric`` and ``__critical``.
    """
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    for column in columns:
        if column.startswith("__") and not (
            column.startswith("__expected") or column in _CSV_SPECIAL
        ):
            raise InvalidInputError(
                f"eval set {source}: unknown special column {column!r}; known: __expected, "
                f"__expected1..N, {', '.join(_CSV_SPECIAL)} (other columns are vars)"
            )
    cases = []
    for row in reader:
        if all(not (value or "").strip() for value in row.values()):
            continue
        cases.append(_csv_row_case(row))
    return cases


def _csv_row_case(row: Mapping[str, str | None]) -> dict[str, Any]:
    case: dict[str, Any] = {"vars": {}, "assert": []}
    metric = None
    for column, cell in row.items():
        value = cell or ""
        if column is None:
            continue  # extra cells beyond the header carry no name to bind to
        if column.startswith("__expected"):
            if value.strip():
                case["assert"].append(parse_assertion_string(value))
        elif column == "__metric":
            metric = value or None
        elif column in _CSV_SPECIAL:
            if value.strip():
                case[column[2:]] = value
        else:
            case["vars"][column] = value
    if metric is not None:
        for assertion in case["assert"]:
            assertion["metric"] = metric
    return case


_LEGACY_PREFIXES: Final = (
    ("javascript:", "javascript"),
    ("fn:", "javascript"),
    ("eval:", "javascript"),
    ("grade:", "llm-rubric"),
    ("llm-rubric:", "llm-rubric"),
    ("python:", "python"),
)
_ALL_TYPES_PATTERN: Final = "|".join(
    re.escape(name) for name in sorted(KNOWN_TYPES + PROMPTFOO_ONLY_TYPES, key=len, reverse=True)
)
_STRING_ASSERTION: Final = re.compile(
    rf"^(not-)?({_ALL_TYPES_PATTERN})(?:\((\d+(?:\.\d+)?)\))?(?::(.*))?$", re.DOTALL
)


def parse_assertion_string(text: str) -> dict[str, Any]:
    """An assertion mapping from promptfoo's CSV string syntax.

    ``type:value`` or ``type(threshold):value``, ``not-`` negates, a bare value means ``equals``;
    ``contains-any:a,b`` lists are split on commas; ``grade:``/``llm-rubric:``, ``python:`` and
    ``file://check.py`` as promptfoo reads them. The value is kept verbatim after the colon.

    >>> parse_assertion_string("not-icontains:sorry")
    {'type': 'not-icontains', 'value': 'sorry'}
    >>> parse_assertion_string("levenshtein(3):Hello")
    {'type': 'levenshtein', 'value': 'Hello', 'threshold': 3.0}
    >>> parse_assertion_string("Paris")
    {'type': 'equals', 'value': 'Paris'}
    """
    for prefix, kind in _LEGACY_PREFIXES:
        if text.startswith(prefix):
            body = text[len(prefix) :]
            return {"type": kind, "value": body.strip() if kind != "llm-rubric" else body}
    if text.startswith("file://"):
        if text.endswith(".py") or ".py:" in text:
            return {"type": "python", "value": text.strip()}
        if re.search(r"\.(js|ts|mjs|cjs)(:|$)", text):
            return {"type": "javascript", "value": text.strip()}
    match = _STRING_ASSERTION.match(text)
    if match is None:
        return {"type": "equals", "value": text}
    negation, kind, threshold, value = match.groups()
    assertion: dict[str, Any] = {"type": f"{negation or ''}{kind}", "value": value}
    if kind in _LIST_VALUE_TYPES and value is not None:
        assertion["value"] = [part.strip() for part in value.split(",")]
    if threshold is not None:
        assertion["threshold"] = float(threshold)
    return assertion


def parse_cases(
    raw_cases: Iterable[Any],
    *,
    source: str,
    base_dir: Path,
    defaults: Mapping[str, Any] | None = None,
    strict: bool = True,
) -> list[EvalCase]:
    """Validated cases from raw mappings, with ``defaults`` merged into each and unique ids.

    ``strict`` (Steward's own eval sets) refuses unknown keys and assertion types; without it
    (promptfoo configurations) they load, and an assertion Steward cannot run is marked
    ``unsupported`` so the run reports it skipped.
    """
    if defaults is not None:
        _check_keys(defaults, _DEFAULT_KEYS, f"eval set {source}: default", strict)
    cases = [
        case_from_mapping(
            raw, index=index, source=source, base_dir=base_dir, defaults=defaults, strict=strict
        )
        for index, raw in enumerate(raw_cases)
    ]
    return _unique_ids(cases, source, strict)


def case_from_mapping(
    raw: Any,
    *,
    index: int,
    source: str,
    base_dir: Path,
    defaults: Mapping[str, Any] | None = None,
    strict: bool = True,
) -> EvalCase:
    """One validated case from its mapping; ``index`` (from 0) names it in errors and in ``case-N``."""
    where = f"eval set {source}: case {index + 1}"
    if not isinstance(raw, dict):
        raise InvalidInputError(
            f"{where}: expected a mapping with 'vars:' and 'assert:', got {type(raw).__name__}"
        )
    case_id = _case_id(raw, index)
    where = f"{where} ({case_id!r})"
    _check_keys(raw, CASE_KEYS, where, strict)
    merged = _merge_defaults(raw, defaults or {}, where)
    variables = merged.get("vars") or {}
    if not isinstance(variables, dict):
        raise InvalidInputError(f"{where}: 'vars' must be a mapping of name: value")
    assertions = [
        _assertion(item, f"{where}, assertion {number}", base_dir, strict)
        for number, item in enumerate(merged["assert"], start=1)
    ]
    if "expected" in raw:
        assertions.append(Assertion(type="equals", value=_equals_value(raw["expected"], where)))
    return EvalCase(
        id=case_id,
        description=str(raw.get("description") or ""),
        vars={str(key): value for key, value in variables.items()},
        assertions=assertions,
        critical=_flag(merged.get("critical", False), f"{where}: 'critical'"),
        threshold=_number(merged.get("threshold"), f"{where}: 'threshold'"),
    )


def _case_id(raw: Mapping[str, Any], index: int) -> str:
    for key in ("id", "description"):
        value = raw.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return f"case-{index + 1}"


def _check_keys(raw: Mapping[str, Any], known: tuple[str, ...], where: str, strict: bool) -> None:
    unknown = sorted(str(key) for key in raw if key not in known)
    if unknown and strict:
        raise InvalidInputError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}"
        )


def _merge_defaults(
    raw: Mapping[str, Any], defaults: Mapping[str, Any], where: str
) -> dict[str, Any]:
    if "assert" in raw and "assertions" in raw:
        raise InvalidInputError(f"{where}: give 'assert' or 'assertions', not both")
    merged: dict[str, Any] = {key: value for key, value in defaults.items() if key != "assertions"}
    merged.update(raw)
    default_vars, case_vars = defaults.get("vars") or {}, raw.get("vars") or {}
    if isinstance(default_vars, dict) and isinstance(case_vars, dict):
        merged["vars"] = {**default_vars, **case_vars}
    merged["assert"] = [
        *_assertion_list(defaults, f"{where}: default 'assert'"),
        *_assertion_list(raw, f"{where}: 'assert'"),
    ]
    return merged


def _assertion_list(raw: Mapping[str, Any], where: str) -> list[Any]:
    items = raw.get("assert", raw.get("assertions"))
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidInputError(f"{where} must be a list of assertions (- type: contains ...)")
    return items


def _assertion(raw: Any, where: str, base_dir: Path, strict: bool) -> Assertion:
    if isinstance(raw, str):
        raw = parse_assertion_string(raw)
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise InvalidInputError(
            f"{where}: expected a mapping with a 'type' (e.g. {{type: contains, value: hello}}), "
            f"got {raw!r}"
        )
    unsupported = _unsupported_reason(raw, strict, where)
    if not strict and unsupported is None:
        unsupported = _unknown_key_reason(raw)
    _check_keys(raw, ASSERTION_KEYS, where, strict)
    assertion = Assertion(
        type=raw["type"],
        value=raw.get("value"),
        weight=_weight(raw.get("weight", 1.0), where),
        threshold=_number(raw.get("threshold"), f"{where}: 'threshold'"),
        provider=raw.get("provider"),
        metric=str(raw["metric"]) if raw.get("metric") is not None else None,
        config=_config(raw.get("config"), where),
        unsupported=unsupported,
    )
    if unsupported is not None:
        return assertion
    return validate_assertion(assertion, where=where, base_dir=base_dir)


def validate_assertion(
    assertion: Assertion, *, where: str = "assertion", base_dir: Path
) -> Assertion:
    """The assertion with its value checked for its type and normalised (``file://`` values read,
    ``contains-any`` text split on commas); raises ``InvalidInputError`` saying what to write.

    Loading does this; the checkers do it again so an ``Assertion`` built in code is held to the
    same rules.
    """
    if assertion.unsupported is not None:
        return assertion
    _unsupported_reason({"type": assertion.type}, True, where)
    if isinstance(assertion.weight, bool) or not assertion.weight >= 0:
        raise InvalidInputError(
            f"{where}: 'weight' must be a number >= 0, got {assertion.weight!r}"
        )
    value = _checked_value(assertion, f"{where} ({assertion.type})", base_dir)
    return assertion if value is assertion.value else replace(assertion, value=value)


def _unsupported_reason(raw: Mapping[str, Any], strict: bool, where: str) -> str | None:
    kind = str(raw["type"])
    base = kind[4:] if kind.startswith("not-") else kind
    if base in KNOWN_TYPES:
        return None
    if strict:
        hint = " (a promptfoo type Steward does not run)" if base in PROMPTFOO_ONLY_TYPES else ""
        raise InvalidInputError(
            f"{where}: unknown assertion type {kind!r}{hint}; known: {', '.join(KNOWN_TYPES)}, "
            "each negatable with not-"
        )
    return f"Steward does not run {kind!r} assertions; known: {', '.join(KNOWN_TYPES)}"


def _unknown_key_reason(raw: Mapping[str, Any]) -> str | None:
    unknown = sorted(str(key) for key in raw if key not in ASSERTION_KEYS)
    if not unknown:
        return None
    return f"Steward does not support the assertion option(s) {', '.join(map(repr, unknown))}"


def _config(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where}: 'config' must be a mapping")
    return dict(value)


def _weight(value: Any, where: str) -> float:
    weight = _number(value, f"{where}: 'weight'")
    if weight is None or weight < 0:
        raise InvalidInputError(
            f"{where}: 'weight' must be a number >= 0 (default 1), got {value!r}"
        )
    return weight


def _number(value: Any, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidInputError(f"{where} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{where} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidInputError(f"{where} must be a finite number, got {value!r}")
    return number


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS + _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    raise InvalidInputError(f"{where} must be true or false, got {value!r}")


def _equals_value(value: Any, where: str) -> Any:
    if value is None:
        raise InvalidInputError(f"{where}: 'expected' is empty; write the exact answer expected")
    return value


def _checked_value(assertion: Assertion, where: str, base_dir: Path) -> Any:
    """The assertion's value, validated for its type and with ``file://`` references read."""
    kind, value = assertion.base_type, assertion.value
    if isinstance(value, str) and value.startswith("file://"):
        return _file_value(value, kind, where, base_dir)
    if kind in _TEXT_VALUE_TYPES:
        return _text_value(value, where, allow_number=True)
    if kind in _LIST_VALUE_TYPES:
        return _list_value(value, where)
    if kind == "equals":
        return _equals_value(value, where)
    if kind == "regex":
        return _regex_value(value, where)
    if kind == "is-json":
        return _schema_value(value, where)
    if kind == "word-count":
        return _word_count_value(value, where)
    if kind in ("levenshtein", "python", "llm-rubric"):
        return _text_value(value, where, allow_number=False)
    if kind == "similar":
        return _similar_value(value, where)
    if assertion.threshold is None:  # latency, cost
        raise InvalidInputError(
            f"{where}: needs a 'threshold' ({'milliseconds' if kind == 'latency' else 'US dollars'})"
        )
    return value


def _text_value(value: Any, where: str, *, allow_number: bool) -> Any:
    if isinstance(value, str) and value != "":
        return value
    if allow_number and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    what = "a non-empty string or a number" if allow_number else "a non-empty string"
    raise InvalidInputError(f"{where}: 'value' must be {what}, got {value!r}")


def _list_value(value: Any, where: str) -> list[Any]:
    if isinstance(value, str) and value.strip():
        # promptfoo's comma-separated form; double quotes protect commas inside a value.
        return [part.strip() for part in next(csv.reader([value], skipinitialspace=True))]
    if (
        isinstance(value, list)
        and value
        and all(isinstance(item, str | int | float) for item in value)
    ):
        return value
    raise InvalidInputError(
        f"{where}: 'value' must be a list of strings (or one comma-separated string), got {value!r}"
    )


def _regex_value(value: Any, where: str) -> str:
    text = _text_value(value, where, allow_number=False)
    if "{{" not in text and "{%" not in text:
        try:
            re.compile(text)
        except re.error as error:
            raise InvalidInputError(
                f"{where}: {text!r} is not a valid regular expression ({error})"
            ) from None
    return str(text)


def _schema_value(value: Any, where: str) -> Any:
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise InvalidInputError(
                f"{where}: the JSON schema is not valid YAML/JSON ({error})"
            ) from None
    if value is None or isinstance(value, dict | bool):
        return value
    raise InvalidInputError(f"{where}: 'value' must be a JSON schema (a mapping), got {value!r}")


def _word_count_value(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        unknown = set(value) - {"min", "max"}
        low, high = value.get("min"), value.get("max")
        bounds = [bound for bound in (low, high) if bound is not None]
        if unknown or not bounds or not all(_is_count(bound) for bound in bounds):
            raise InvalidInputError(
                f"{where}: 'value' must be a whole number or {{min: N, max: M}}, got {value!r}"
            )
        if low is not None and high is not None and low > high:
            raise InvalidInputError(f"{where}: min ({low}) must not exceed max ({high})")
        return {"min": low, "max": high}
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if _is_count(value):
        return int(value)
    raise InvalidInputError(
        f"{where}: 'value' must be a whole number or {{min: N, max: M}}, got {value!r}"
    )


def _is_count(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    )


def _similar_value(value: Any, where: str) -> Any:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    raise InvalidInputError(
        f"{where}: 'value' must be the expected text or a list of texts, got {value!r}"
    )


def _file_value(reference: str, kind: str, where: str, base_dir: Path) -> Any:
    """Read a ``file://`` value: python keeps the reference (run later), others load the file."""
    target = reference[len("file://") :]
    if kind == "python":
        file_part = target.split(":", 1)[0] if ".py:" in target else target
        _existing(base_dir / file_part, where)
        return reference
    path = _existing(base_dir / target, where)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidInputError(f"{where}: {path} is not valid JSON ({error.msg})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        return yaml.safe_load(text)
    return text


def _existing(path: Path, where: str) -> Path:
    if not path.is_file():
        raise InvalidInputError(
            f"{where}: no file {path}; file:// paths are relative to the eval set's folder"
        )
    return path


def _unique_ids(cases: list[EvalCase], source: str, strict: bool) -> list[EvalCase]:
    seen: dict[str, int] = {}
    unique = []
    for index, case in enumerate(cases, start=1):
        if case.id in seen:
            if strict:
                raise InvalidInputError(
                    f"eval set {source}: cases {seen[case.id]} and {index} share the id {case.id!r}; "
                    "give each an 'id:' of its own so results stay comparable between runs"
                )
            number = 2
            while f"{case.id} #{number}" in seen:
                number += 1
            case = replace(case, id=f"{case.id} #{number}")
        seen[case.id] = index
        unique.append(case)
    return unique
