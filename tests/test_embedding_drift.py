"""Embedding drift of LLM answers: a change of subject alarms, the same distribution rarely does.

Answers come from the shipped fake LLM's composer (``steward.testing.answers.compose_answer``, as
``FakeLLM`` answers a chat), asked about support topics or, for the shift, about gardening topics
from a fixed word list; the model is WordLlama's, loaded from its wheel with the network blocked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

from steward.errors import InvalidInputError
from steward.llm.embedding_drift import (
    DEFAULT_FLOOR,
    DEFAULT_PERMUTATIONS,
    EMBEDDING_DIM,
    embed_texts,
    embedding_drift,
)
from steward.monitoring.llm_outputs import EMBEDDING_ALPHA, output_results
from steward.testing.answers import compose_answer, request_key

SUPPORT = (
    "refunds", "annual plans", "parcel delivery", "password resets", "invoices",
    "the free trial", "shipping fees", "account deletion",
)  # fmt: skip
GARDENING = (
    "tomato seedlings", "compost heaps", "rose pruning", "lawn mowing", "soil acidity",
    "greenhouse heating", "apple orchards", "weed control",
)  # fmt: skip
ASKS = (
    "How do {topic} work?",
    "Explain {topic} for a new customer.",
    "What should I know about {topic}?",
    "Can you help me with {topic}, please?",
)
START = datetime(2026, 11, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)


def answers(seed: int, n: int, topics: Sequence[str] = SUPPORT) -> list[str]:
    """``n`` answers of the fake LLM to questions about ``topics``, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    found = []
    for index in range(n):
        question = str(rng.choice(ASKS)).format(topic=rng.choice(topics))
        messages = [{"role": "user", "content": f"{question} (ticket {index})"}]
        found.append(compose_answer(question, request_key(seed, "house-model", messages), 1.0))
    return found


def energy_coefficient(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """The energy distance (within-side means over distinct pairs) and coefficient, from scipy's
    pairwise distances: an independent computation of what the module reports."""
    cross = cdist(reference, current).mean()
    within = []
    for side in (reference, current):
        pairs = cdist(side, side)
        within.append(pairs.sum() / (len(side) * (len(side) - 1)))
    distance = 2 * cross - within[0] - within[1]
    return distance, distance / (2 * cross)


# --- what it must see, and not see ---------------------------------------------------------------


def test_answers_on_another_subject_alarm() -> None:
    reference, current = answers(1, 150), answers(2, 150, GARDENING)

    result = embedding_drift(reference, current, seed=3)

    assert result.alarm
    assert result.p_value == pytest.approx(1 / (DEFAULT_PERMUTATIONS + 1))
    assert result.coefficient > DEFAULT_FLOOR == result.threshold
    assert (result.n_reference, result.n_current) == (150, 150)


def test_the_distance_is_the_energy_distance_of_the_embeddings() -> None:
    reference, current = answers(4, 60), answers(5, 40, GARDENING)

    result = embedding_drift(reference, current, permutations=19)

    distance, coefficient = energy_coefficient(embed_texts(reference), embed_texts(current))
    assert result.distance == pytest.approx(distance, rel=1e-4)
    assert result.coefficient == pytest.approx(coefficient, rel=1e-4)


def test_the_same_distribution_rarely_alarms() -> None:
    """Two seeded samples of one generator, 200 times: the alarm rate stays within 5%."""
    runs, per_side = 200, 120
    alarms = significant = 0
    for run in range(runs):
        result = embedding_drift(
            answers(1_000 + 2 * run, per_side), answers(1_001 + 2 * run, per_side), seed=run
        )
        alarms += result.alarm
        significant += result.significant
    upper = stats.beta.ppf(0.975, alarms + 1, runs - alarms)
    print(
        f"\nembedding drift false alarms: {alarms} of {runs} ({alarms / runs:.1%}), 95% "
        f"Clopper-Pearson upper bound {upper:.2%}; significant {significant} of {runs}"
    )
    assert alarms / runs <= 0.05


def test_at_large_sizes_the_floor_keeps_a_small_significant_shift_quiet() -> None:
    """2,000 answers a side. A twentieth of them on another subject is significant but under the
    floor; a tenth is over it. (A mixture's coefficient grows with the square of the share.)"""
    reference = answers(6, 2_000)
    twentieth = answers(7, 1_900) + answers(8, 100, GARDENING)
    tenth = answers(7, 1_800) + answers(8, 200, GARDENING)

    began = time.perf_counter()
    small = embedding_drift(reference, twentieth)
    elapsed = time.perf_counter() - began
    larger = embedding_drift(reference, tenth)

    print(f"\nembedding drift of 2,000 + 2,000 answers: {elapsed:.2f} s")
    assert small.significant and small.coefficient < DEFAULT_FLOOR and not small.alarm
    assert larger.alarm and larger.coefficient > DEFAULT_FLOOR
    assert embedding_drift(reference, twentieth, floor=0.0).alarm


def test_sides_beyond_the_cap_are_sampled_with_the_seed() -> None:
    reference, current = answers(11, 90), answers(12, 70)

    first = embedding_drift(reference, current, permutations=19, max_texts=50, seed=4)
    again = embedding_drift(reference, current, permutations=19, max_texts=50, seed=4)

    assert (first.n_reference, first.n_current) == (50, 50)
    assert (first.n_reference_total, first.n_current_total) == (90, 70)
    assert first == again


def test_the_model_loads_from_the_wheel_without_network() -> None:
    script = """
import logging, socket
def refuse(*args, **kwargs):
    raise OSError("network blocked by the test")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from steward.llm.embedding_drift import embed_texts
vectors = embed_texts(["Your refund arrives in five days.", "Prune roses in late winter."])
print(vectors.shape[1], round(float((vectors ** 2).sum(axis=1).min()), 4),
      len(logging.getLogger().handlers))
"""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    dimensions, norm, handlers = done.stdout.split()
    assert (int(dimensions), float(norm)) == (EMBEDDING_DIM, 1.0)
    assert int(handlers) == 0  # wordllama's logging.basicConfig was undone


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "options", "message"),
    [
        ("one long answer", {}, "must be a list of answer texts"),
        (["fine", None], {}, "reference_texts[1] is None"),
        (["only one"], {}, "needs at least 2"),
        (["a", "b"], {"permutations": 5}, "permutations=5"),
        (["a", "b"], {"floor": -0.1}, "floor=-0.1"),
        (["a", "b"], {"max_texts": 1}, "max_texts=1"),
    ],
)
def test_bad_input_is_named(reference: object, options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        embedding_drift(reference, ["c", "d"], **options)  # type: ignore[arg-type]


# --- in the llm_outputs monitor ------------------------------------------------------------------


def calls(texts: list[str], start: datetime) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "output_text": texts,
            # Token counts stand in for the provider's, so a hashed side still has a descriptor.
            "output_tokens": [max(1, len(text.split())) for text in texts],
            "event_time": [start + HOUR * index / len(texts) for index in range(len(texts))],
            "prompt": "support-answer",
            "prompt_version": 1,
            "request_model": "house-model",
        }
    )


def test_the_monitor_alarms_on_a_change_of_subject() -> None:
    reference = calls(answers(21, 200), START)
    current = calls(answers(22, 200, GARDENING), START + HOUR)

    (result,) = output_results("assistant", (START + HOUR, START + 2 * HOUR), (START, START + HOUR),
                               reference, current)  # fmt: skip

    embedding = result.details["embedding"]
    assert result.breach and embedding["alarm"]
    assert "answer embeddings moved" in result.summary
    assert embedding["p_value"] <= embedding["alpha"] == EMBEDDING_ALPHA == 0.005
    assert embedding["coefficient"] > embedding["threshold"] == DEFAULT_FLOOR
    assert (embedding["n_reference"], embedding["n_current"]) == (200, 200)
    assert json.loads(json.dumps(result.details))["embedding"] == embedding


def test_the_monitor_skips_embeddings_of_hashed_texts() -> None:
    reference = calls(answers(23, 150), START)
    current = calls(["sha256:" + f"{index:064x}" for index in range(150)], START + HOUR)

    (result,) = output_results("assistant", (START + HOUR, START + 2 * HOUR), (START, START + HOUR),
                               reference, current)  # fmt: skip

    skipped = result.details["embedding"]["skipped"]
    assert "0 answer texts in the current" in skipped and "hashed" in skipped
