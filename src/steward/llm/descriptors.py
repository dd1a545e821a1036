"""What an LLM's answers look like, as numbers a drift check can watch: one row per call.

:func:`describe_calls` turns logged calls (``llm_call`` events, ``steward.llm.calls``) into
descriptor columns that the output monitor (``steward.monitoring.llm_outputs``) compares between a
reference and a current window with the same rule as the input features:

==================  ================================================================================
``output_tokens``   the provider's count of the answer's tokens (reasoning included)
``output_chars``    characters of the answer
``output_words``    whitespace-separated words of the answer
``refused``         1 when a refusal pattern (``DEFAULT_REFUSALS``, extensible) matches, else 0
``json_valid``      1 when the whole answer parses as JSON, else 0 (only with ``json_expected``;
                    refused answers are left out, ``refused`` counts them)
``sentiment``       VADER's compound score of the answer, -1 (negative) to 1 (positive)
``keyword:<word>``  how often each named keyword or phrase occurs, case-insensitive, whole words
``latency_ms``      the call's latency
``cost``            the call's cost in US dollars, for priced calls only
``error``           1 when the call failed, else 0
``finish_reason``   why the answer ended: stop, length, content_filter, tool_calls, error or other
==================  ================================================================================

A value that is not known is missing (NaN, or None for ``finish_reason``), never made up: the
text descriptors of a call whose text was hashed or dropped (the system's ``call_text``) or that
failed (it has no answer); ``output_tokens`` of a failed call, or of an answer whose provider
reported no usage (0 tokens: every answer costs at least one); ``cost`` of an unpriced call.
``refused``, ``json_valid`` and ``error`` are 0/1 rates: their mean is the share of calls.

Example::

    >>> import pandas as pd
    >>> calls = pd.DataFrame({
    ...     "output_text": ["Sure, the refund takes 5 days.", "I'm sorry, but I can't help with that.",
    ...                     "sha256:" + "0" * 64],
    ...     "output_tokens": [9, 11, 7], "latency_ms": [420.0, 310.0, 500.0],
    ...     "cost": [0.001, 0.001, None], "priced": [True, True, False],
    ...     "error": [None, None, None], "finish_reasons": ['["stop"]', '["stop"]', '["length"]']})
    >>> described = describe_calls(calls, keywords=["refund"])
    >>> described[["output_words", "refused", "keyword:refund"]].to_dict("list")
    {'output_words': [6.0, 8.0, nan], 'refused': [0.0, 1.0, nan], 'keyword:refund': [1.0, 0.0, nan]}
    >>> described["cost"].tolist()
    [0.001, 0.001, nan]
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa

from steward._util.frames import to_arrow_table
from steward.errors import ConfigError, InvalidInputError

__all__ = [
    "APOSTROPHES",
    "DEFAULT_REFUSALS",
    "FINISH_REASONS",
    "KEYWORD_PREFIX",
    "RATE_DESCRIPTORS",
    "TEXT_DESCRIPTORS",
    "check_options",
    "describe_calls",
    "finish_reason",
    "is_hashed_text",
    "keyword_column",
]

#: Refusals as models word them, searched anywhere in the answer, case-insensitive (typographic
#: apostrophes read as plain ones). Extend with ``refusal_patterns=(*DEFAULT_REFUSALS, r"...")``.
DEFAULT_REFUSALS: Final[tuple[str, ...]] = (
    r"\bI(?:'m| am) sorry,? (?:but )?I (?:can't|cannot|can not|won't|am unable|'m unable|am not able)",
    r"\bI (?:cannot|can't|can not|am unable to|'m unable to|am not able to|won't be able to) "
    r"(?:help|assist|provide|comply|fulfil|answer|support|share|do that|discuss)",
    r"\bI (?:must|have to) (?:decline|refuse)\b",
    r"\bI apologi[sz]e,? but I (?:can't|cannot|won't|am unable)",
    r"\bI(?:'m| am) not (?:able|allowed|permitted) to (?:help|assist|provide|answer|share|discuss)",
    r"\bas an AI\b",
)
#: The values of ``finish_reason``; a provider's own words are mapped onto them.
FINISH_REASONS: Final = ("stop", "length", "content_filter", "tool_calls", "error", "other")
#: Descriptors holding 0/1 (a share of calls when averaged): compared as categories.
RATE_DESCRIPTORS: Final = frozenset({"refused", "json_valid", "error"})
#: The prefix of a keyword's count column: ``keyword:refund``.
KEYWORD_PREFIX: Final = "keyword:"
#: Descriptors read from the answer's text (keyword columns too): missing without a kept text.
TEXT_DESCRIPTORS: Final = frozenset(
    {"output_chars", "output_words", "refused", "json_valid", "sentiment"}
)

_HASHED: Final = re.compile(r"sha256:[0-9a-f]{64}")
#: Typographic apostrophes read as plain ones, in texts and patterns alike.
APOSTROPHES: Final = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
# Each provider's words for why an answer ended, in the OpenAI/OpenTelemetry vocabulary.
_REASON_WORDS: Final = {
    "stop": ("stop", "end_turn", "stop_sequence", "eos", "completed"),
    "length": ("length", "max_tokens", "max_output_tokens", "model_length", "token_limit"),
    "content_filter": (
        "content_filter",
        "safety",
        "refusal",
        "recitation",
        "blocklist",
        "prohibited_content",
        "spii",
        "image_safety",
        "guardrail_intervened",
        "content_filtered",
    ),
    "tool_calls": (
        "tool_calls",
        "tool_call",
        "function_call",
        "tool_use",
        "malformed_function_call",
    ),
    "error": ("error",),
}
_REASONS: Final = {word: reason for reason, words in _REASON_WORDS.items() for word in words}


def describe_calls(
    calls: pa.Table | pd.DataFrame,
    *,
    refusal_patterns: Sequence[str] = DEFAULT_REFUSALS,
    keywords: Sequence[str] = (),
    json_expected: bool = False,
) -> pd.DataFrame:
    """One row per call of ``calls`` with its output descriptors (see the module's table).

    ``calls`` holds ``llm_call`` events (``EventLog.scan("llm_call", ...)``, a pandas DataFrame or
    a polars one) and must have ``output_text``; a descriptor whose source column is absent
    (``output_tokens``, ``latency_ms``, ``cost``, ``error``, ``finish_reasons``) is left out.
    ``refusal_patterns`` are regular expressions (the whole list: extend ``DEFAULT_REFUSALS``
    rather than replace it unless you mean to); ``keywords`` each add a ``keyword:<word>`` count.

    >>> import pandas as pd
    >>> describe_calls(pd.DataFrame({"output_text": ['{"a": 1}', "{'a': 1}"]}),
    ...                json_expected=True)["json_valid"].tolist()
    [1.0, 0.0]
    """
    table = to_arrow_table(calls, "the calls")
    if "output_text" not in table.column_names:
        raise InvalidInputError(
            f"the calls have no 'output_text' column (they have {table.column_names}); pass "
            "llm_call events, e.g. EventLog.scan('llm_call', system, start, end)"
        )
    refusals = _compile_refusals(refusal_patterns)
    counters = _keyword_counters(keywords)
    failed = _failed(table)
    texts = [
        None if fail or not _kept(text) else str(text).translate(APOSTROPHES)
        for text, fail in zip(table.column("output_text").to_pylist(), failed, strict=True)
    ]
    columns: dict[str, Any] = {}
    if "output_tokens" in table.column_names:
        columns["output_tokens"] = _output_tokens(table.column("output_tokens"), failed)
    columns.update(_text_columns(texts, refusals, counters, json_expected))
    columns.update(_call_columns(table, failed))
    return pd.DataFrame({name: _as_series(values) for name, values in columns.items()})


def check_options(refusal_patterns: Sequence[str], keywords: Sequence[str]) -> None:
    """Raise ``InvalidInputError`` for a refusal pattern that is not a regular expression or a
    keyword that is empty or listed twice, as :func:`describe_calls` would.

    >>> check_options(DEFAULT_REFUSALS, ["refund", "Refund"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    steward.errors.InvalidInputError: keywords 'refund' and 'Refund' are the same when case is ignored; ...
    """
    _compile_refusals(refusal_patterns)
    _keyword_counters(keywords)


def is_hashed_text(text: object) -> bool:
    """Whether ``text`` is what ``call_text: hash`` stores in place of a text.

    >>> is_hashed_text("sha256:" + "ab" * 32), is_hashed_text("sha256: not a digest")
    (True, False)
    """
    return isinstance(text, str) and _HASHED.fullmatch(text) is not None


def keyword_column(keyword: str) -> str:
    """The column that counts ``keyword``: ``keyword:`` and the keyword, spaces collapsed.

    >>> keyword_column("  Free   trial ")
    'keyword:Free trial'
    """
    return KEYWORD_PREFIX + " ".join(keyword.split())


def finish_reason(value: object, failed: bool = False) -> str | None:
    """Why an answer ended, in ``FINISH_REASONS``: ``error`` for a failed call, else the first
    reported reason (a list, its JSON text or one word) in OpenAI's words; None when not reported.

    >>> finish_reason('["end_turn"]'), finish_reason(["MAX_TOKENS"]), finish_reason(None, True)
    ('stop', 'length', 'error')
    """
    if failed:
        return "error"
    reasons: object = value
    if isinstance(value, str):
        try:
            reasons = json.loads(value)
        except ValueError:
            reasons = [value]
    if isinstance(reasons, str):
        reasons = [reasons]
    if not isinstance(reasons, Sequence) or not reasons:
        return None
    first = str(reasons[0]).strip().lower()
    if not first:
        return None
    return _REASONS.get(first, "other")


# --- checking the options ------------------------------------------------------------------------


def _compile_refusals(patterns: Sequence[str]) -> list[re.Pattern[str]]:
    if isinstance(patterns, str):
        raise InvalidInputError(
            f"refusal_patterns must be a list of regular expressions, got the string {patterns!r}; "
            "wrap it in a list: [*DEFAULT_REFUSALS, pattern]"
        )
    compiled = []
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern.strip():
            raise InvalidInputError(
                f"refusal pattern #{index} is {pattern!r}; each must be a non-empty regular "
                'expression such as r"I can(?:no|\')t assist"'
            )
        try:
            compiled.append(re.compile(pattern.translate(APOSTROPHES), re.IGNORECASE))
        except re.error as error:
            raise InvalidInputError(
                f"refusal pattern #{index} {pattern!r} is not a valid regular expression "
                f"({error}); escape special characters such as '(' or '?' with a backslash"
            ) from None
    return compiled


def _keyword_counters(keywords: Sequence[str]) -> dict[str, re.Pattern[str]]:
    if isinstance(keywords, str):
        raise InvalidInputError(
            f"keywords must be a list of words or phrases, got the string {keywords!r}; "
            f"wrap it in a list: [{keywords!r}]"
        )
    counters: dict[str, re.Pattern[str]] = {}
    seen: dict[str, str] = {}
    for keyword in keywords:
        if not isinstance(keyword, str) or not keyword.strip():
            raise InvalidInputError(
                f"keyword {keyword!r} is not a word or phrase; give non-empty text, e.g. 'refund'"
            )
        folded = " ".join(keyword.split()).casefold()
        if folded in seen:
            raise InvalidInputError(
                f"keywords {seen[folded]!r} and {keyword!r} are the same when case is ignored; "
                "list each once (counts are case-insensitive)"
            )
        seen[folded] = keyword
        words = [re.escape(word) for word in keyword.translate(APOSTROPHES).split()]
        # Whole words: "refund" is not counted inside "refunded"; a phrase's words may be split
        # by any whitespace.
        body = r"\s+".join(words)
        counters[keyword_column(keyword)] = re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)
    return counters


# --- reading the columns -------------------------------------------------------------------------


def _text_columns(
    texts: list[str | None],
    refusals: list[re.Pattern[str]],
    counters: dict[str, re.Pattern[str]],
    json_expected: bool,
) -> dict[str, np.ndarray]:
    columns = {
        "output_chars": _per_text(texts, len),
        "output_words": _per_text(texts, lambda text: len(text.split())),
        "refused": _per_text(texts, lambda text: float(any(p.search(text) for p in refusals))),
    }
    if json_expected:
        valid = _per_text(texts, _parses_as_json)
        # A refusal is counted by ``refused``; JSON validity is a property of answers.
        columns["json_valid"] = np.where(columns["refused"] == 1.0, np.nan, valid)
    columns["sentiment"] = _per_text(texts, _compound)
    for name, pattern in counters.items():
        columns[name] = _per_text(texts, _counter(pattern))
    return columns


def _call_columns(table: pa.Table, failed: list[bool]) -> dict[str, Any]:
    names = table.column_names
    columns: dict[str, Any] = {}
    if "latency_ms" in names:
        columns["latency_ms"] = _floats(table.column("latency_ms"))
    if "cost" in names:
        columns["cost"] = _cost(table)
    if "error" in names:
        columns["error"] = np.asarray(failed, dtype=np.float64)
    if "finish_reasons" in names or "error" in names:
        reasons = (
            table.column("finish_reasons").to_pylist()
            if "finish_reasons" in names
            else [None] * table.num_rows
        )
        columns["finish_reason"] = pd.Series(
            [finish_reason(value, fail) for value, fail in zip(reasons, failed, strict=True)],
            dtype=object,
        )
    return columns


def _failed(table: pa.Table) -> list[bool]:
    if "error" not in table.column_names:
        return [False] * table.num_rows
    return [
        isinstance(error, str) and bool(error.strip())
        for error in table.column("error").to_pylist()
    ]


def _kept(text: object) -> bool:
    return isinstance(text, str) and not is_hashed_text(text)


def _per_text(texts: list[str | None], measure: Callable[[str], float]) -> np.ndarray:
    return np.array(
        [math.nan if text is None else float(measure(text)) for text in texts], dtype=np.float64
    )


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    try:
        values = column.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InvalidInputError(
            f"the calls' {column.type} column cannot be read as numbers; pass the llm_call "
            "fields with their types (numbers for tokens, latency and cost)"
        ) from None
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def _output_tokens(column: pa.ChunkedArray, failed: list[bool]) -> np.ndarray:
    tokens = _floats(column)
    # A failed call has no answer; a successful one reported with 0 tokens had its usage missing
    # (a stream without the usage chunk, say): every answer costs at least one token.
    unknown = np.asarray(failed, dtype=bool) | (tokens == 0)
    return np.where(unknown, np.nan, tokens)


def _cost(table: pa.Table) -> np.ndarray:
    cost = _floats(table.column("cost"))
    if "priced" in table.column_names:
        priced = np.asarray(
            [flag is True for flag in table.column("priced").to_pylist()], dtype=bool
        )
        cost = np.where(priced, cost, np.nan)
    return cost


def _counter(pattern: re.Pattern[str]) -> Callable[[str], float]:
    return lambda text: float(len(pattern.findall(text)))


def _parses_as_json(text: str) -> float:
    try:
        json.loads(text)
    except ValueError:
        return 0.0
    return 1.0


@cache
def _analyzer() -> Any:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        raise ConfigError(
            "the sentiment descriptor needs the vaderSentiment package, which is not installed; "
            "run `pip install vaderSentiment` (it ships its lexicon and needs no network)"
        ) from None
    return SentimentIntensityAnalyzer()


def _compound(text: str) -> float:
    return float(_analyzer().polarity_scores(text)["compound"])


def _as_series(values: Any) -> pd.Series:
    return values if isinstance(values, pd.Series) else pd.Series(values, dtype=np.float64)
