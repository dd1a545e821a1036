"""Deterministic assertions with promptfoo's semantics, and the outcome of a case from its results.

Each assertion answers "does the output meet this?" with a pass, a score and a reason; ``not-``
inverts the pass (promptfoo: "every test type can be negated by prepending ``not-``"). An assertion
that cannot be checked at all (an unknown cost, a Python check that raises, a regex that does not
compile once rendered) fails, whether negated or not: an error never passes.

A case passes when every assertion that ran passed, or, with a case ``threshold``, when the weighted
mean of their scores reaches it. Like promptfoo, an assertion of weight 0 is reported but never
fails its case and adds nothing to the score. A skipped assertion (a judge with no judge provider,
a promptfoo feature Steward lacks) is neither passed nor failed, and a case whose assertions were
all skipped is itself skipped.

>>> from steward.llm.evals.cases import Assertion
>>> context = CheckContext(vars={"name": "Ada"})
>>> result = check_assertion(Assertion("not-icontains", "sorry"), "Hello Ada", context)
>>> result.passed, result.score
(True, 1.0)
>>> check_assertion(Assertion("contains", "{{ name }}"), "Hello Ada", context).passed
True
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import importlib.util
import json
import math
import re
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from jinja2 import Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from steward.errors import InvalidInputError
from steward.llm.evals.cases import JUDGE_TYPES, Assertion, validate_assertion
from steward.llm.providers import Completion

__all__ = [
    "DEFAULT_LEVENSHTEIN_THRESHOLD",
    "AssertionResult",
    "CheckContext",
    "case_outcome",
    "check_assertion",
    "levenshtein_distance",
    "render_template",
    "render_value",
    "skipped_result",
]

#: promptfoo's default maximum edit distance for ``levenshtein``.
DEFAULT_LEVENSHTEIN_THRESHOLD: Final = 5.0
_ENVIRONMENT: Final = SandboxedEnvironment(keep_trailing_newline=True, autoescape=False)
_ENVIRONMENT.filters["dump"] = lambda value, indent=None: json.dumps(value, indent=indent)


@dataclass
class AssertionResult:
    """What one assertion found. ``passed`` is None when it was skipped (``reason`` says why).

    Judged assertions also carry each repeat's pass and ``agreement``, the share of repeats that
    agree with the reported (majority) result.
    """

    type: str
    passed: bool | None
    score: float
    reason: str
    weight: float = 1.0
    repeats: list[bool] = field(default_factory=list)
    agreement: float | None = None
    metric: str | None = None

    @property
    def skipped(self) -> bool:
        return self.passed is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data; :meth:`from_dict` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AssertionResult:
        """A result from :meth:`to_dict` output."""
        return cls(
            type=str(data["type"]),
            passed=data.get("passed"),
            score=float(data.get("score", 0.0)),
            reason=str(data.get("reason", "")),
            weight=float(data.get("weight", 1.0)),
            repeats=[bool(item) for item in data.get("repeats", [])],
            agreement=data.get("agreement"),
            metric=data.get("metric"),
        )


@dataclass(frozen=True)
class CheckContext:
    """What an assertion may look at besides the output: the case's vars, the completion (for
    ``latency`` and ``cost``), the rendered prompt, and the folder ``file://`` paths resolve from."""

    vars: Mapping[str, Any] = field(default_factory=dict)
    completion: Completion | None = None
    prompt: str = ""
    base_dir: Path = field(default_factory=Path.cwd)
    case_id: str = ""
    description: str = ""


class _CheckError(Exception):
    """The assertion could not be checked; it fails, negated or not."""


@dataclass(frozen=True)
class _Check:
    raw: bool  # before not- is applied
    condition: str  # "contain 'Ada'": what the assertion asks of the output
    score: float | None = None  # None: 1 when passed, else 0
    detail: str = ""


def skipped_result(assertion: Assertion, reason: str) -> AssertionResult:
    """The result of an assertion that was not run, with why."""
    return AssertionResult(
        type=assertion.type,
        passed=None,
        score=0.0,
        reason=f"skipped: {reason}",
        weight=assertion.weight,
        metric=assertion.metric,
    )


def render_template(text: str, variables: Mapping[str, Any]) -> str:
    """Render ``{{ var }}`` placeholders as promptfoo's nunjucks does (jinja2, sandboxed; an
    unknown variable renders empty). A broken template raises ``InvalidInputError``.

    >>> render_template("Hello {{ name | upper }}", {"name": "ada"})
    'Hello ADA'
    """
    try:
        return _compiled(text).render(**variables)
    except TemplateError as error:
        raise InvalidInputError(f"cannot render the template {text[:80]!r}: {error}") from None


@lru_cache(maxsize=512)
def _compiled(text: str) -> Template:
    return _ENVIRONMENT.from_string(text)


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """An assertion value with its templates rendered (strings, and strings inside lists)."""
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return render_template(value, variables)
    if isinstance(value, list):
        return [render_value(item, variables) for item in value]
    return value


def check_assertion(assertion: Assertion, output: str, context: CheckContext) -> AssertionResult:
    """Check one deterministic assertion against ``output``.

    Judged types (``llm-rubric``, ``similar``) go through :mod:`steward.llm.evals.judges`; given
    here, they are reported skipped.
    """
    if assertion.unsupported is not None:
        return skipped_result(assertion, assertion.unsupported)
    if assertion.base_type in JUDGE_TYPES:
        return skipped_result(assertion, f"{assertion.type!r} needs a judge provider")
    try:
        assertion = validate_assertion(assertion, base_dir=context.base_dir)
        if assertion.base_type == "python":
            return _weighted(assertion, _check_python(assertion, output, context))
        value = render_value(assertion.value, context.vars)
        check = _CHECKERS[assertion.base_type](assertion, value, output, context)
    except (_CheckError, InvalidInputError) as error:
        return _failed(assertion, str(error))
    return _weighted(assertion, _apply_negation(assertion, check))


def _apply_negation(assertion: Assertion, check: _Check) -> AssertionResult:
    passed = check.raw != assertion.inverse
    expectation = f"expected output to {'not ' if assertion.inverse else ''}{check.condition}"
    reason = f"{'passed' if passed else 'failed'}: {expectation}"
    if check.detail:
        reason = f"{reason} ({check.detail})"
    return AssertionResult(
        type=assertion.type,
        passed=passed,
        score=check.score if check.score is not None else float(passed),
        reason=reason,
        weight=assertion.weight,
        metric=assertion.metric,
    )


def _failed(assertion: Assertion, reason: str) -> AssertionResult:
    return AssertionResult(
        type=assertion.type,
        passed=False,
        score=0.0,
        reason=f"failed: {reason}",
        weight=assertion.weight,
        metric=assertion.metric,
    )


def _weighted(assertion: Assertion, result: AssertionResult) -> AssertionResult:
    if assertion.weight == 0 and result.passed is False:
        result.reason += "; weight 0, so it never fails its case (as in promptfoo)"
    return result


def case_outcome(
    results: Sequence[AssertionResult], threshold: float | None = None
) -> tuple[bool | None, float | None, str]:
    """A case's pass, score and reason from its assertion results, as promptfoo decides them.

    The score is the weighted mean of the scores of the assertions that ran (0 when their weights
    sum to 0). Without ``threshold`` the case passes when none of weight above 0 failed; with it,
    when the score reaches it. No assertions at all passes (promptfoo's "No assertions"); all
    skipped gives ``(None, None, reason)``.

    >>> ok = AssertionResult("equals", False, 0.0, "", weight=2)
    >>> near = AssertionResult("contains", True, 1.0, "", weight=1)
    >>> case_outcome([ok, near])[0], round(case_outcome([ok, near])[1], 2)
    (False, 0.33)
    >>> case_outcome([ok, near], threshold=0.3)[0]
    True
    """
    if not results:
        return True, 1.0, "no assertions"
    counted = [result for result in results if result.passed is not None]
    if not counted:
        return None, None, "every assertion was skipped"
    total_weight = sum(result.weight for result in counted)
    score = sum(r.score * r.weight for r in counted) / total_weight if total_weight > 0 else 0.0
    if threshold is not None:
        passed = score >= threshold
        return (
            passed,
            score,
            f"weighted score {score:.2f} {'>=' if passed else '<'} threshold {threshold:g}",
        )
    failures = [result for result in counted if not result.passed and result.weight > 0]
    if failures:
        return (
            False,
            score,
            f"{len(failures)} of {len(counted)} assertions failed: {failures[0].reason}",
        )
    return True, score, "every assertion passed"


def _js_string(value: Any) -> str:
    """A value as JavaScript's ``String()`` writes it, so YAML ``1.0`` and ``true`` match promptfoo."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _json_equal(left: Any, right: Any) -> bool:
    """Deep equality of parsed JSON, strict on types (``true`` is not ``1``) as promptfoo's is."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    return type(left) is type(right) and left == right


def _strict_json(text: str) -> Any:
    """``json.loads`` refusing NaN and Infinity, which JSON (and promptfoo) does not allow."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _equals(assertion: Assertion, value: Any, output: str, context: CheckContext) -> _Check:
    if isinstance(value, dict | list):
        try:
            parsed = _strict_json(output)
        except ValueError:
            return _Check(False, f"equal the JSON {json.dumps(value)}", detail="output is not JSON")
        return _Check(_json_equal(value, parsed), f"equal the JSON {json.dumps(value)}")
    return _Check(output == _js_string(value), f"equal {_js_string(value)!r}")


def _contains(assertion: Assertion, value: Any, output: str, context: CheckContext) -> _Check:
    needle = _js_string(value)
    if assertion.base_type == "icontains":
        return _Check(needle.lower() in output.lower(), f"contain {needle!r} (any case)")
    return _Check(needle in output, f"contain {needle!r}")


def _contains_many(assertion: Assertion, value: Any, output: str, context: CheckContext) -> _Check:
    kind = assertion.base_type
    fold = kind.startswith("i")
    haystack = output.lower() if fold else output
    needles = [_js_string(item) for item in value]
    found = [needle for needle in needles if (needle.lower() if fold else needle) in haystack]
    case = " (any case)" if fold else ""
    if kind.endswith("-any"):
        return _Check(bool(found), f"contain one of {needles}{case}")
    missing = [needle for needle in needles if needle not in found]
    return _Check(not missing, f"contain all of {needles}{case}", detail=_missing(missing))


def _missing(missing: list[str]) -> str:
    return f"missing {missing}" if missing else ""


def _starts_with(assertion: Assertion, value: Any, output: str, context: CheckContext) -> _Check:
    prefix = _js_string(value)
    return _Check(output.startswith(prefix), f"start with {prefix!r}")


def _regex(assertion: Assertion, value: Any, output: str, context: CheckContext) -> _Check:
    try:
        pattern = re.compile(str(value))
    except re.error as error:
        raise _CheckError(f"{value!r} is not a valid regular expression ({error})") from None
    return _Check(pattern.search(output) is not None, f"match the regex {pattern.pattern!r}")


def _is_json(assertion: Assertion, value: Any, output: str, context: CheckContext) -> _Check:
    try:
        parsed = _strict_json(output)
    except ValueError as error:
        return _Check(False, "be valid JSON", detail=f"not JSON: {error}")
    if value is None:
        return _Check(True, "be valid JSON")
    errors = _schema_errors(value, parsed)
    return _Check(not errors, "be JSON matching the schema", detail="; ".join(errors[:3]))


def _schema_errors(schema: Any, instance: Any) -> list[str]:
    import jsonschema  # imported here: only schema checks pay for it

    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise _CheckError(f"the JSON schema is invalid: {error.message}") from None
    validator = validator_class(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def _word_count(assertion: Assertion, value: Any, output: str, context: CheckContext) -> _Check:
    count = len(output.split())
    detail = f"{count} words"
    if not isinstance(value, dict):
        return _Check(count == int(value), f"have exactly {int(value)} words", detail=detail)
    low, high = value.get("min"), value.get("max")
    within = (low is None or count >= low) and (high is None or count <= high)
    if low is not None and high is not None:
        return _Check(within, f"have between {low} and {high} words", detail=detail)
    if low is not None:
        return _Check(within, f"have at least {low} words", detail=detail)
    return _Check(within, f"have at most {high} words", detail=detail)


def levenshtein_distance(left: str, right: str) -> int:
    """The edit distance between two strings (insertions, deletions, substitutions cost 1).

    >>> levenshtein_distance("kitten", "sitting")
    3
    """
    if len(left) < len(right):
        left, right = right, left
    previous = list(range(len(right) + 1))
    for i, char_left in enumerate(left, start=1):
        current = [i]
        for j, char_right in enumerate(right, start=1):
            current.append(
                min(
                    previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_left != char_right)
                )
            )
        previous = current
    return previous[-1]


def _levenshtein(assertion: Assertion, value: Any, output: str, context: CheckContext) -> _Check:
    limit = (
        assertion.threshold if assertion.threshold is not None else DEFAULT_LEVENSHTEIN_THRESHOLD
    )
    distance = levenshtein_distance(output, str(value))
    return _Check(
        distance <= limit,
        f"be within {limit:g} edits of {str(value)!r}",
        detail=f"distance {distance}",
    )


def _latency(assertion: Assertion, value: Any, output: str, context: CheckContext) -> _Check:
    if context.completion is None:
        raise _CheckError("no completion to read the latency from")
    latency = context.completion.latency_ms
    limit = float(assertion.threshold or 0.0)
    return _Check(latency <= limit, f"take at most {limit:g} ms", detail=f"took {latency:.0f} ms")


def _cost(assertion: Assertion, value: Any, output: str, context: CheckContext) -> _Check:
    completion = context.completion
    if completion is None or completion.cost is None:
        model = completion.model if completion is not None else "?"
        raise _CheckError(
            f"the cost of this answer is unknown (model {model!r} reported none and no price is "
            "known), so a cost limit cannot be checked; configure prices for the model or remove "
            "the cost assertion"
        )
    limit = float(assertion.threshold or 0.0)
    return _Check(
        completion.cost <= limit, f"cost at most ${limit:g}", detail=f"cost ${completion.cost:.6g}"
    )


_CHECKERS: Final[dict[str, Callable[[Assertion, Any, str, CheckContext], _Check]]] = {
    "equals": _equals,
    "contains": _contains,
    "icontains": _contains,
    "contains-any": _contains_many,
    "contains-all": _contains_many,
    "icontains-any": _contains_many,
    "icontains-all": _contains_many,
    "starts-with": _starts_with,
    "regex": _regex,
    "is-json": _is_json,
    "word-count": _word_count,
    "levenshtein": _levenshtein,
    "latency": _latency,
    "cost": _cost,
}


def _python_context(assertion: Assertion, context: CheckContext) -> dict[str, Any]:
    """promptfoo's ``AssertionValueFunctionContext``, as far as Steward knows its parts."""
    completion = context.completion.to_dict() if context.completion is not None else None
    return {
        "prompt": context.prompt,
        "vars": dict(context.vars),
        "test": {
            "id": context.case_id,
            "description": context.description,
            "vars": dict(context.vars),
        },
        "config": dict(assertion.config),
        "providerResponse": completion,
        "logProbs": None,
        "metadata": None,
    }


def _check_python(assertion: Assertion, output: str, context: CheckContext) -> AssertionResult:
    code = str(assertion.value)
    try:
        returned = _run_python(code, output, _python_context(assertion, context), context.base_dir)
        raw, score, detail = _python_outcome(returned, assertion.threshold)
    except _CheckError as error:
        return _failed(assertion, str(error))
    except Exception as error:  # the user's code may raise anything; it fails the assertion
        return _failed(assertion, f"the Python check raised {type(error).__name__}: {error}")
    passed = raw != assertion.inverse
    if isinstance(returned, bool) or score is None:
        score = float(passed)
    verdict = "passed" if passed else "failed"
    negated = " (negated)" if assertion.inverse else ""
    return AssertionResult(
        type=assertion.type,
        passed=passed,
        score=score,
        reason=f"{verdict}: Python check{negated}: {detail}",
        weight=assertion.weight,
        metric=assertion.metric,
    )


def _run_python(code: str, output: str, python_context: dict[str, Any], base_dir: Path) -> Any:
    if code.startswith("file://"):
        reference = code[len("file://") :]
        path_text, _, name = reference.partition(".py:")
        path = base_dir / (path_text + ".py" if name else reference)
        function = getattr(_load_module(str(path.resolve())), name or "get_assert", None)
        if not callable(function):
            raise _CheckError(f"{path} has no function {name or 'get_assert'!r}(output, context)")
        return function(output, python_context)
    namespace: dict[str, Any] = {
        "__builtins__": builtins,
        "output": output,
        "context": python_context,
        "json": json,
        "math": math,
        "re": re,
    }
    if "\n" not in code.strip():
        return eval(compile(code.strip(), "<python assertion>", "eval"), namespace)
    body = textwrap.indent(textwrap.dedent(code), "    ")
    exec(
        compile(f"def _check(output, context):\n{body}\n", "<python assertion>", "exec"), namespace
    )
    return namespace["_check"](output, python_context)


def _load_module(path: str) -> ModuleType:
    file = Path(path)
    if not file.is_file():
        raise _CheckError(
            f"no Python file {file}; file:// paths are relative to the eval set's folder"
        )
    stat = file.stat()
    return _load_module_version(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _load_module_version(path: str, mtime_ns: int, size: int) -> ModuleType:
    """The module at ``path``, loaded once per version of the file (its mtime and size)."""
    name = f"steward_eval_check_{hashlib.sha256(f'{path}:{mtime_ns}'.encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _CheckError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling in the user's module look it up here
    spec.loader.exec_module(module)
    return module


def _python_outcome(returned: Any, threshold: float | None) -> tuple[bool, float | None, str]:
    """promptfoo's reading of a Python check's return: bool, number, or ``{pass, score, reason}``."""
    if isinstance(returned, str):
        returned = _python_string(returned)
    if isinstance(returned, bool):
        return returned, None, f"returned {returned}"
    if isinstance(returned, int | float):
        score = float(returned)
        if not math.isfinite(score):
            raise _CheckError(f"the Python check returned {score}, not a finite number")
        raw = score >= threshold if threshold is not None else score > 0
        rule = f">= {threshold:g}" if threshold is not None else "> 0"
        return raw, score, f"returned {score:g} (passes when {rule})"
    if dataclasses.is_dataclass(returned) and not isinstance(returned, type):
        returned = dataclasses.asdict(returned)
    if isinstance(returned, dict):
        return _grading_result(returned, threshold)
    raise _CheckError(
        f"the Python check returned {type(returned).__name__}; return a bool, a number or "
        "{'pass': bool, 'score': float, 'reason': str}"
    )


def _python_string(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if text.strip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise _CheckError(f"the Python check returned malformed JSON ({error.msg})") from None
    try:
        return float(text)
    except ValueError:
        raise _CheckError(
            f"the Python check returned the text {text[:80]!r}; return a bool, a number or a dict"
        ) from None


def _grading_result(result: Mapping[str, Any], threshold: float | None) -> tuple[bool, float, str]:
    verdict = result.get("pass", result.get("pass_"))
    if not isinstance(verdict, bool):
        raise _CheckError(
            f"the Python check returned a dict without a boolean 'pass' ({sorted(result)}); "
            "return {'pass': bool, 'score': float, 'reason': str}"
        )
    score = result.get("score", float(verdict))
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise _CheckError(f"the Python check returned the score {score!r}, not a finite number")
    reason = str(result.get("reason") or f"returned pass={verdict}")
    if threshold is not None and score < threshold:
        return (
            False,
            float(score),
            f"score {score:g} is below the threshold {threshold:g}: {reason}",
        )
    return verdict, float(score), reason
