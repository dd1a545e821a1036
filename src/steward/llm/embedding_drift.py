"""Embedding drift of an LLM's answers: did what they talk about, or how, move as a whole?

Length, refusal and keyword descriptors (``steward.llm.descriptors``) miss an answer set that turns
to another subject or another tone at the same length. :func:`embedding_drift` embeds each answer
with WordLlama (a static token-embedding model shipped inside the ``wordllama`` wheel: mean of its
token vectors, 256 dimensions, normalised to unit length; loaded from the wheel's own files, never
from the network) and compares the two clouds of points with the **energy distance**:

    E = 2·mean|x - y| - mean|x - x'| - mean|y - y'|

(Euclidean distances; within-side means over distinct pairs, so E is about 0 when nothing moved).
It is zero only when the two distributions are equal, needs no kernel bandwidth (an MMD would, and
its verdict would depend on it), and sees a change of spread as well as of centre. Its size is read
as the energy coefficient ``H = E / (2·mean|x - y|)`` in [0, 1] (Székely and Rizzo), which does not
depend on the scale of the embedding space.

The p-value comes from a permutation null: the pooled answers are relabelled at random
``permutations`` times and ``p = (1 + #{E_perm >= E}) / (1 + permutations)``, a valid p-value at
any sample size. An alarm needs ``p <= alpha`` *and* ``H > floor``: with 2,000 answers a side a
change far too small to matter is significant, so the floor (``DEFAULT_FLOOR``) sets how big a
change must be. At most ``max_texts`` answers a side (2,000 by default, drawn with ``seed``) are
embedded, so the test costs about a second whatever the window holds.

Example::

    >>> import random
    >>> support = [f"Your refund for order {i} arrives within five days." for i in range(60)]
    >>> garden = [f"Plant tomato seedling {i} in warm, well-drained soil." for i in range(60)]
    >>> random.Random(0).shuffle(support)  # two samples of one distribution
    >>> embedding_drift(support[:30], support[30:], permutations=99).alarm
    False
    >>> embedding_drift(support, garden, permutations=99).alarm
    True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from steward.errors import ConfigError, InvalidInputError

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_FLOOR",
    "DEFAULT_MAX_TEXTS",
    "DEFAULT_PERMUTATIONS",
    "EMBEDDING_DIM",
    "MAX_CHARS",
    "EmbeddingDrift",
    "embed_texts",
    "embedding_drift",
]

#: Relabellings of the pooled answers behind the p-value; its smallest value is 1/201.
DEFAULT_PERMUTATIONS: Final = 200
#: The energy coefficient a change must exceed to alarm. A mixture's coefficient grows with the
#: square of the share of answers that moved: on the shipped fake, support answers against answers
#: about gardening give 0.05; with 2,000 a side, a tenth of them turning to gardening gives about
#: 0.0006 (alarms), a twentieth about 0.0002 (significant, but quiet). So about a tenth of answers
#: on a new subject, or a milder shift of more of them, is what it takes; at a few hundred answers
#: a side the permutation test, not the floor, is the binding condition.
DEFAULT_FLOOR: Final = 0.0004
#: The significance level of the permutation test.
DEFAULT_ALPHA: Final = 0.05
#: Answers embedded per side at most; larger sides are sampled with the seed.
DEFAULT_MAX_TEXTS: Final = 2_000
#: Characters of an answer that are embedded (its opening carries its subject and tone, and the
#: cap bounds memory: WordLlama pads a batch to its longest text).
MAX_CHARS: Final = 4_000
#: Dimensions kept of WordLlama's 256 (its vectors are trained so that a prefix also works).
EMBEDDING_DIM: Final = 256

_CONFIG: Final = "l2_supercat"
_BATCH: Final = 32
_CHUNK: Final = 50  # permutations evaluated per matrix product


@dataclass(frozen=True)
class EmbeddingDrift:
    """The energy-distance test of two sets of answers (see the module docstring).

    ``distance`` is the energy distance E, ``coefficient`` the energy coefficient H compared with
    ``threshold`` (the floor); ``alarm`` = ``significant`` (``p_value <= alpha``) and
    ``coefficient > threshold``. ``n_reference``/``n_current`` count the answers embedded, the
    ``*_total`` fields the answers given.
    """

    distance: float
    coefficient: float
    p_value: float
    threshold: float
    alpha: float
    significant: bool
    alarm: bool
    n_reference: int
    n_current: int
    n_reference_total: int
    n_current_total: int
    permutations: int
    seed: int
    model: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-safe dict (a monitor result's ``details``)."""
        return asdict(self)


def embedding_drift(
    reference_texts: Sequence[str],
    current_texts: Sequence[str],
    *,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    floor: float = DEFAULT_FLOOR,
    alpha: float = DEFAULT_ALPHA,
    max_texts: int = DEFAULT_MAX_TEXTS,
) -> EmbeddingDrift:
    """Whether ``current_texts`` moved away from ``reference_texts`` in embedding space.

    Each side needs at least two texts; sides longer than ``max_texts`` are sampled (without
    replacement, with ``seed``, which also draws the permutations, so a call repeats exactly).

    >>> result = embedding_drift(["a refund", "the refund", "refunds"], ["a rose", "the roses",
    ...                          "rose bushes"], permutations=19)
    >>> result.n_reference, result.permutations, 0 < result.p_value <= 1
    (3, 19, True)
    """
    _check_options(permutations, seed, floor, alpha, max_texts)
    sides = _texts(reference_texts, "reference_texts"), _texts(current_texts, "current_texts")
    rng = np.random.default_rng(seed)
    chosen = [_sample(texts, max_texts, rng) for texts in sides]
    points = embed_texts([*chosen[0], *chosen[1]])
    distances = _distances(points)
    n = len(chosen[0])
    labels = np.zeros((len(points), 1), dtype=np.float32)
    labels[:n] = 1.0
    observed, cross = _energy(distances, labels)
    null = np.concatenate(
        [
            _energy(distances, _relabel(rng, len(points), n, size))[0]
            for size in _chunks(permutations)
        ]
    )
    distance = float(observed[0])
    p_value = float((1 + np.count_nonzero(null >= distance)) / (1 + permutations))
    coefficient = distance / (2.0 * float(cross[0])) if cross[0] > 0 else 0.0
    significant = p_value <= alpha
    return EmbeddingDrift(
        distance=distance,
        coefficient=coefficient,
        p_value=p_value,
        threshold=floor,
        alpha=alpha,
        significant=significant,
        alarm=significant and coefficient > floor,
        n_reference=n,
        n_current=len(chosen[1]),
        n_reference_total=len(sides[0]),
        n_current_total=len(sides[1]),
        permutations=permutations,
        seed=seed,
        model=_model_name(),
    )


def embed_texts(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """The unit-length WordLlama embeddings of ``texts``, one row each (an empty text gives zeros).

    >>> embed_texts(["a refund", ""]).shape
    (2, 256)
    """
    clipped = [text[:MAX_CHARS] for text in _texts(texts, "texts", minimum=0)]
    if not clipped:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    vectors = np.asarray(
        _embedder().embed(clipped, norm=False, batch_size=_BATCH), dtype=np.float32
    )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


# --- the statistic -------------------------------------------------------------------------------


def _distances(points: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Pairwise Euclidean distances, in place of one float32 matrix (64 MB at 4,000 points)."""
    squared = np.einsum("ij,ij->i", points, points)
    matrix = points @ points.T
    matrix *= -2.0
    matrix += squared[:, None]
    matrix += squared[None, :]
    np.maximum(matrix, 0.0, out=matrix)
    np.sqrt(matrix, out=matrix)
    np.fill_diagonal(matrix, 0.0)
    return matrix


def _energy(
    distances: npt.NDArray[np.float32], labels: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The energy distance and the mean cross distance for each labelling (a column of 0/1,
    1 marking the reference): one matrix product serves every labelling of the chunk."""
    size, n = len(distances), int(labels[:, 0].sum())
    m = size - n
    row_sums = distances.sum(axis=1, dtype=np.float64)
    to_reference = (distances @ labels).astype(np.float64)
    weights = labels.astype(np.float64)
    within_reference = (weights * to_reference).sum(axis=0)
    reference_rows = weights.T @ row_sums
    cross = reference_rows - within_reference
    within_current = row_sums.sum() - 2.0 * reference_rows + within_reference
    mean_cross = cross / (n * m)
    energy = 2.0 * mean_cross - within_reference / (n * (n - 1)) - within_current / (m * (m - 1))
    return energy, mean_cross


def _relabel(rng: np.random.Generator, size: int, n: int, count: int) -> npt.NDArray[np.float32]:
    labels = np.zeros((size, count), dtype=np.float32)
    for column in range(count):
        labels[rng.permutation(size)[:n], column] = 1.0
    return labels


def _chunks(total: int) -> list[int]:
    return [min(_CHUNK, total - first) for first in range(0, total, _CHUNK)]


def _sample(texts: list[str], limit: int, rng: np.random.Generator) -> list[str]:
    if len(texts) <= limit:
        return texts
    return [texts[index] for index in sorted(rng.choice(len(texts), limit, replace=False))]


# --- checking the input --------------------------------------------------------------------------


def _texts(values: Sequence[str], name: str, minimum: int = 2) -> list[str]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InvalidInputError(
            f"{name} must be a list of answer texts, got {type(values).__name__} {values!r:.60}; "
            "pass e.g. the output_text of the llm_call events"
        )
    bad = [index for index, text in enumerate(values) if not isinstance(text, str)]
    if bad:
        raise InvalidInputError(
            f"{name}[{bad[0]}] is {values[bad[0]]!r:.60}, not a text ({len(bad)} such); leave out "
            "failed calls and hashed or dropped texts before comparing"
        )
    if len(values) < minimum:
        raise InvalidInputError(
            f"{name} has {len(values)} text(s); the energy distance needs at least {minimum} a side"
        )
    return list(values)


def _check_options(permutations: int, seed: int, floor: float, alpha: float, limit: int) -> None:
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 19:
        raise InvalidInputError(
            f"permutations={permutations!r}: give an integer of at least 19 (the p-value's "
            f"smallest value is 1/(permutations + 1)); the default is {DEFAULT_PERMUTATIONS}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError(f"seed={seed!r}: give a non-negative integer, e.g. 0")
    if not isinstance(floor, int | float) or not math.isfinite(floor) or not 0 <= floor < 1:
        raise InvalidInputError(
            f"floor={floor!r}: give an energy coefficient in [0, 1); the default is {DEFAULT_FLOOR}"
        )
    if not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise InvalidInputError(f"alpha={alpha!r}: give a level in (0, 1), e.g. 0.05")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 2:
        raise InvalidInputError(
            f"max_texts={limit!r}: give an integer of at least 2; the default is "
            f"{DEFAULT_MAX_TEXTS}"
        )


# --- the model -----------------------------------------------------------------------------------


@cache
def _embedder() -> Any:
    """WordLlama's shipped model, built from the wheel's own weights and tokenizer files.

    ``WordLlama.load()`` looks for the tokenizer under ``wordllama/tokenizer/`` while the wheel
    ships it under ``wordllama/tokenizers/``, so it would download it; reading both files directly
    keeps the load offline.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
        from safetensors import safe_open
        from wordllama.config.models import WordLlamaModels
    except ImportError:
        raise ConfigError(
            "answer embedding drift needs the wordllama package, which is not installed; run "
            "`pip install wordllama` (its model ships inside the wheel and needs no network)"
        ) from None
    finally:
        # wordllama calls logging.basicConfig on import; leave the application's logging alone.
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
    package = Path(wordllama.__file__).parent
    uri = getattr(WordLlamaModels, _CONFIG)
    weights = package / "weights" / wordllama.WordLlama.get_filename(_CONFIG, 256)
    tokenizer_file = package / "tokenizers" / uri.tokenizer_config
    missing = [str(path) for path in (weights, tokenizer_file) if not path.is_file()]
    if missing:
        raise ConfigError(
            f"the wordllama wheel lacks its shipped model file(s) {missing}; reinstall it with "
            "`pip install --force-reinstall wordllama`"
        )
    tokenizer = wordllama.WordLlama.load_tokenizer(tokenizer_file)
    with safe_open(str(weights), framework="np", device="cpu") as tensors:
        matrix = tensors.get_tensor(uri.tensor_key)[:, :EMBEDDING_DIM]
    return wordllama.WordLlamaInference(matrix, tokenizer)


def _model_name() -> str:
    import wordllama

    return f"wordllama {wordllama.__version__} {_CONFIG} {EMBEDDING_DIM}d"
