"""``steward demo``: the churn story of DESIGN.md on the Telco data shipped with the package.

``run_demo`` builds a fresh workspace with the system ``churn`` (a contract inferred from the
training data, a policy with a 10% holdout, monitors, SLOs, playbooks and a retrain command), trains
and registers v1 with its card, serves it through the real HTTP API on a thread, and replays twelve
simulated weeks ending now (``steward.demo.story``): a product launch in week seven shifts the inputs
and breaks a feature, the contract flags it, drift fires, realized quality falls when the labels
arrive, the playbook retrains, shadows and asks for approval, a named person approves, v2 becomes
champion, and the uplift of the calls against the holdout is shown with its interval.

Then a second story on the same weeks (``steward.demo.assistant``): the support assistant, an LLM
system served by the fake provider of ``steward.testing``, whose week-five prompt change passes a
weak eval set, makes answers about 60% longer and dearer, alarms the output monitor, burns the
cost SLO and is rolled back by a playbook; the eval set gains the case that fails it.

Every figure is computed from the data; ``--seed`` changes the split, the customers and their
behaviour, so the figures, not the story.

The modules, lowest first: ``model`` (the Telco data, the churn pipeline, its metrics), ``config``
(the workspace and its ``steward.yaml``), ``narrator``, ``simulation`` (the market and the
in-process server), ``figures`` (what a run leaves), ``narration`` and ``finale`` (what the loop
did, and the end), ``assistant`` (the second story), ``story`` (the weeks); ``retrain`` is the
training command the playbook runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.demo.config import (
    DEMO_CONFIG,
    GOLDEN_SET,
    MONITORS,
    PLAYBOOKS,
    POLICY,
    RETRAIN_WINDOW,
    SLOS,
    TRAIN_FILE,
    WINDOW,
    demo_config,
    prepare_workspace,
)
from steward.demo.model import FEATURES, NUMERIC, TARGET, evaluate, load_telco, train_churn_model
from steward.demo.narrator import Narrator

if TYPE_CHECKING:
    from steward.demo.figures import DemoRun

__all__ = [
    "DEMO_CONFIG",
    "FEATURES",
    "GOLDEN_SET",
    "MONITORS",
    "NUMERIC",
    "PLAYBOOKS",
    "POLICY",
    "RETRAIN_WINDOW",
    "SLOS",
    "TARGET",
    "TRAIN_FILE",
    "WINDOW",
    "Narrator",
    "demo_config",
    "evaluate",
    "load_telco",
    "prepare_workspace",
    "run_demo",
    "train_churn_model",
]


def run_demo(
    workspace: Path,
    *,
    seed: int = 0,
    customers_per_week: int = 400,
    narrator: Narrator | None = None,
    port: int = 0,
    overrides: dict[str, Any] | None = None,
) -> DemoRun:
    """Tell the churn story, then the assistant's, in a fresh ``workspace``; return the ``DemoRun``
    (server still up).

    The caller stops the server with ``run.close()`` or keeps serving with ``run.serve_forever()``.
    """
    # Imported here, not above: the retrain command and the users of ``train_churn_model`` import
    # this package, and need neither the server nor the store.
    from steward.demo.story import Story

    story = Story(
        workspace,
        seed=seed,
        customers_per_week=customers_per_week,
        narrator=narrator or Narrator(),
        overrides=overrides or {},
    )
    return story.tell(port=port)
