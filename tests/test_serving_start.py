"""What keeps serving latency steady under load: start-up, model calls, and forming batches.

The lifespan loads every served model before the first request and freezes the heap start-up made
(so full garbage collections skip it), and lets it go at the end. A model call of a batch runs on
one OpenMP thread, limiting only the calling thread, and gives the scores the default team gives.
The batch worker waits for as many callers as a recent batch held, so a set of concurrent callers
does not split for good into halves served in turn.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pandas as pd
import pytest
from threadpoolctl import ThreadpoolController

from steward import Steward
from steward.delivery.batching import SINGLE_THREAD_ROWS, NativeThreads
from steward.delivery.serving import Service
from steward.demo import train_churn_model
from steward.web import create_app
from steward.web.app import lifespan


def openmp_threads() -> int:
    """The OpenMP team size a parallel region started by the calling thread would get."""
    found = ThreadpoolController().select(user_api="openmp").info()
    if not found:
        pytest.skip("no OpenMP runtime is loaded in this process")
    return int(found[0]["num_threads"])


def test_a_small_call_runs_on_one_openmp_thread_and_no_other_thread_is_limited() -> None:
    import sklearn.ensemble  # noqa: F401  # loads scikit-learn's OpenMP runtime

    default = openmp_threads()
    threads = NativeThreads()
    seen_elsewhere: list[int] = []
    with threads.limited(SINGLE_THREAD_ROWS):
        inside = openmp_threads()
        other = threading.Thread(target=lambda: seen_elsewhere.append(openmp_threads()))
        other.start()
        other.join()
    assert inside == 1
    assert seen_elsewhere == [default]
    assert openmp_threads() == default  # restored after the call
    with threads.limited(SINGLE_THREAD_ROWS + 1):  # a large call keeps the default team
        assert openmp_threads() == default


def test_a_boosted_model_scores_the_same_on_one_thread_as_on_the_default_team(
    telco: tuple[pd.DataFrame, pd.Series],
) -> None:
    frame, target = telco
    model = train_churn_model(frame[:1500], target[:1500], boosting=True)
    features = frame.drop(columns=["customerID"]).head(64)
    expected = model.predict_proba(features)
    with NativeThreads().limited(len(features)):
        assert openmp_threads() == 1
        alone = model.predict_proba(features)
    assert (alone == expected).all()


def test_the_lifespan_loads_the_served_models_and_freezes_the_start_up_heap_until_it_ends(
    workspace: Steward,
    telco_model: object,
    telco: tuple[pd.DataFrame, pd.Series],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    loads: list[tuple[str, int]] = []
    load_model = workspace.load_model

    def counted(system: str, version: int, *args: Any, **kwargs: Any) -> Any:
        loads.append((system, version))
        return load_model(system, version, *args, **kwargs)

    monkeypatch.setattr(workspace, "load_model", counted)
    app = create_app(workspace)
    service: Service = app.state.service
    records = telco[0].head(2).to_dict(orient="records")

    async def serve() -> tuple[int, list[tuple[str, int]]]:
        async with lifespan(app):
            frozen = gc.get_freeze_count()
            loaded_at_start = list(loads)
            results = await service.predict_async("churn", records)
            assert [result.model_version for result in results] == [1, 1]
        return frozen, loaded_at_start

    try:
        frozen, loaded_at_start = asyncio.run(serve())
    finally:
        gc.unfreeze()
    assert loaded_at_start == [("churn", 1)]  # before any request
    assert loads == [("churn", 1)]  # and the request did not load it again
    assert frozen > 0
    assert gc.get_freeze_count() == 0  # nothing stays pinned once the app stops


def test_a_system_that_cannot_be_loaded_at_start_does_not_stop_the_server(
    workspace: Steward, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    """No champion yet: the server starts, and the first request says what to do."""
    app = create_app(workspace)
    service: Service = app.state.service

    async def serve() -> str:
        async with lifespan(app):
            try:
                await service.predict_async("churn", telco[0].head(1).to_dict(orient="records"))
            except Exception as error:  # the request's own error, with what to do
                return str(error)
        return ""

    assert "no champion" in asyncio.run(serve())
