"""What the fake LLM says: readable English built from the prompt, JSON that follows a schema, and
the token counts a real provider would bill.

Everything here is a pure function of its arguments; randomness comes from a generator seeded by a
stable hash of the request (blake2b, not Python's salted ``hash``), so answers repeat across runs.

>>> text = compose_answer("How do refunds work for annual plans?", request_key(0, "m", []), 1.0)
>>> 20 <= len(text.split()) <= 40, "refunds" in text
(True, True)
>>> count_tokens(3, 4 / 3)
4
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from typing import Any

__all__ = [
    "REFUSAL",
    "STOP_WORDS",
    "break_json",
    "compose_answer",
    "content_words",
    "count_tokens",
    "count_words",
    "fraction",
    "instance_of",
    "request_key",
    "truncate_to_tokens",
]

#: The whole answer to a refused request.
REFUSAL = "I'm sorry, but I can't help with that."

_STOP_TEXT = """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each either else even ever
    every few for from further had has have having he her here hers herself him himself his how i if
    in into is it its itself just let like may me might more most much must my myself neither no nor
    not now of off on once only or other ought our ours ourselves out over own per please same shall
    she should since so some such than that the their theirs them themselves then there these they
    this those though through thus to too under until up upon us very via was we were what when where
    whether which while who whom whose why will with within without would yet you your yours
    yourself yourselves tell give make want need know think
"""
#: Common English words that carry no topic: left out of restated key words, rubric terms and
#: embeddings.
STOP_WORDS = frozenset(_STOP_TEXT.split())

_NOUNS = (
    "context", "evidence", "detail", "example", "process", "result", "approach",
    "question", "record", "outcome", "method", "summary",
)  # fmt: skip
_ADJECTIVES = (
    "clear", "useful", "careful", "simple", "steady", "practical", "reliable",
    "modest", "direct", "helpful",
)  # fmt: skip
_OPENERS = (
    "Here is a short answer about {topic}.",
    "You asked about {topic}.",
    "On {topic}, a few points stand out.",
    "Let us look at {topic} step by step.",
)
_SENTENCES = (
    "The main point is that {term} depends on the {noun}.",
    "A {adjective} {noun} usually helps to explain {term}.",
    "In practice, {term} is easier to judge with a {adjective} {noun}.",
    "It is worth checking the {noun} before drawing a conclusion.",
    "Most readers find that {term} becomes {adjective} once the {noun} is known.",
    "A second look at the {noun} often shows why {term} matters.",
    "The {adjective} view is that {term} and the {noun} go together.",
    "This keeps the {noun} simple and the result {adjective}.",
    "When in doubt, start from the {noun} and work back to {term}.",
    "Each {noun} adds a little more certainty about {term}.",
)
#: Short sentences by their number of words, to make up an answer's exact length.
_SHORT = {
    1: ("Indeed.", "Usually.", "Naturally."),
    2: ("Details matter.", "Context helps.", "Results vary."),
    3: ("That is typical.", "Evidence helps here.", "Context matters here."),
    4: ("Check the details first.", "The context is key.", "Keep the process simple."),
}
#: Words a prompt asks with rather than asks about: not restated as its topic.
_PROMPT_VERBS = frozenset(
    ("explain", "describe", "summarize", "summarise", "write", "list", "show", "help", "compare")
)
_WORD = re.compile(r"[^\W\d_][^\W_]*(?:'[^\W_]+)?")


def request_key(seed: int, model: str, messages: list[dict[str, str]]) -> bytes:
    """A stable digest of what an answer may depend on: the seed, the model and the messages."""
    canonical = json.dumps([seed, model, messages], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=32).digest()


def fraction(key: bytes, purpose: str) -> float:
    """A number in [0, 1) drawn from ``key`` for one ``purpose`` (refusal, error, ...).

    >>> fraction(b"k", "refusal") == fraction(b"k", "refusal") != fraction(b"k", "error")
    True
    """
    digest = hashlib.blake2b(purpose.encode("utf-8") + b"\0" + key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def count_words(text: str) -> int:
    """Whitespace-separated words, the unit the fake counts tokens in."""
    return len(text.split())


def count_tokens(words: int, tokens_per_word: float) -> int:
    """``ceil(words * tokens_per_word)``, rounded first so that 3 * (4/3) is 4, not 5."""
    return math.ceil(round(words * tokens_per_word, 6))


def content_words(text: str, *, minimum_letters: int = 1) -> list[str]:
    """The words of ``text`` that are not stop words, lower-cased, in order, with repeats.

    >>> content_words("The refund policy, and THE deadline")
    ['refund', 'policy', 'deadline']
    """
    words = [word.lower() for word in _WORD.findall(text)]
    return [w for w in words if len(w) >= minimum_letters and w not in STOP_WORDS]


def _key_words(text: str) -> list[str]:
    """Up to four distinct topic words of the prompt, as the user wrote them."""
    seen: dict[str, str] = {}
    for word in _WORD.findall(text):
        lowered = word.lower()
        skipped = lowered in STOP_WORDS or lowered in _PROMPT_VERBS or lowered in seen
        if len(lowered) >= 4 and not skipped:
            seen[lowered] = word
    return list(seen.values())[:4]


def _topic(words: list[str]) -> str:
    if not words:
        return "your question"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def compose_answer(prompt: str, key: bytes, verbosity: float) -> str:
    """An answer to ``prompt``: its key words restated, then filler sentences, ending in a period.

    At verbosity 1 it has 20 to 40 words (drawn from ``key``); ``verbosity`` multiplies that count.
    Whole sentences fill it as far as they fit, and short ones make up the exact count.
    """
    generator = random.Random(key)
    target = max(1, round(generator.randint(20, 40) * verbosity))
    keywords = _key_words(prompt)
    words = generator.choice(_OPENERS).format(topic=_topic(keywords)).split()
    turn = 0
    while fitting := [t for t in _SENTENCES if len(t.split()) <= target - len(words)]:
        term = keywords[turn % len(keywords)] if keywords else generator.choice(_NOUNS)
        sentence = generator.choice(fitting).format(
            term=term, noun=generator.choice(_NOUNS), adjective=generator.choice(_ADJECTIVES)
        )
        words += sentence.split()
        turn += 1
    used: set[str] = set()
    while len(words) < target:
        size = min(target - len(words), max(_SHORT))
        short = generator.choice([s for s in _SHORT[size] if s not in used])
        used.add(short)
        words += short.split()
    if len(words) > target:  # only when the opener alone is too long
        words = words[:target]
        words[-1] = words[-1].rstrip(".,;:") + "."
    return " ".join(words)


def truncate_to_tokens(text: str, limit: int, tokens_per_word: float) -> str | None:
    """``text`` cut to the most words whose token count fits ``limit``; None when it fits already."""
    words = text.split()
    if count_tokens(len(words), tokens_per_word) <= limit:
        return None
    kept = len(words)
    while kept > 0 and count_tokens(kept, tokens_per_word) > limit:
        kept -= 1
    return " ".join(words[:kept])


def instance_of(schema: Any, sentences: list[str], key: bytes) -> Any:
    """A value that follows the JSON ``schema``, its strings taken from ``sentences`` in turn.

    Handles what structured outputs use: ``type`` (or a list of types), ``properties`` (all filled),
    ``items``, ``enum``, ``const``, ``anyOf``/``oneOf``/``allOf`` (the first) and local ``$ref``.

    >>> instance_of({"type": "object", "properties": {"why": {"type": "string"}}}, ["Because."], b"")
    {'why': 'Because.'}
    """
    return _Instance(schema if isinstance(schema, dict) else {}, sentences or ["Yes."], key).of(
        schema, "$", 0
    )


class _Instance:
    def __init__(self, root: dict[str, Any], sentences: list[str], key: bytes) -> None:
        self.root = root
        self.sentences = sentences
        self.turn = 0
        self.key = key

    def of(self, schema: Any, path: str, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > 12:
            return None
        if "$ref" in schema:
            return self.of(self.resolve(str(schema["$ref"])), path, depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for combinator in ("anyOf", "oneOf", "allOf"):
            options = schema.get(combinator)
            if isinstance(options, list) and options:
                return self.of(options[0], path, depth + 1)
        kind = schema.get("type", "object" if "properties" in schema else "string")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        return self.typed(str(kind), schema, path, depth)

    def typed(self, kind: str, schema: dict[str, Any], path: str, depth: int) -> Any:
        if kind == "object":
            properties = schema.get("properties") or {}
            return {
                name: self.of(sub, f"{path}.{name}", depth + 1) for name, sub in properties.items()
            }
        if kind == "array":
            count = min(max(int(_number(schema, "minItems", 1)), 1), 3)
            return [
                self.of(schema.get("items", {}), f"{path}[{i}]", depth + 1) for i in range(count)
            ]
        if kind in ("number", "integer"):
            low = _number(schema, "minimum", 0)
            high = _number(schema, "maximum", low + 1 if kind == "number" else low + 10)
            value = low + fraction(self.key, path) * (high - low)
            return math.floor(value) if kind == "integer" else round(value, 3)
        if kind == "boolean":
            return fraction(self.key, path) < 0.5
        if kind == "null":
            return None
        sentence = self.sentences[self.turn % len(self.sentences)]
        self.turn += 1
        return sentence

    def resolve(self, reference: str) -> Any:
        if not reference.startswith("#/"):
            return {}
        node: Any = self.root
        for part in reference[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node


def _number(schema: dict[str, Any], name: str, default: float) -> float:
    value = schema.get(name, default)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number and math.isfinite(value) else float(default)


def break_json(text: str) -> str:
    """``text`` (valid JSON) made unparseable the way a model breaks it: cut short.

    >>> break_json('{"a": 1}')
    '{"a": 1'
    """
    if text[:1] in ("{", "[", '"') and len(text) > 1:
        return text[:-1]
    return text + ","
