"""``steward demo``: the churn story of DESIGN.md on the Telco data shipped with the package.

``run_demo`` builds a fresh workspace with the system ``churn`` (a contract inferred from the
training data, a policy with a 10% holdout, monitors, SLOs, playbooks and a retrain command), trains
and registers v1 with its card, serves it through the real HTTP API on a thread, and replays twelve
simulated weeks ending now (``steward.demo.story``): a product launch in week seven shifts the inputs
and breaks a feature, the contract flags it, drift fires, realized quality falls when the labels
arrive, the playbook retrains, shadows and asks for approval, a named person approves, v2 becomes
champion, and the uplift of the calls against the holdout is shown with its interval.

Every figure is computed from the data; ``--seed`` changes the split, the customers and their
behaviour, so the figures, not the story.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from steward.errors import ConfigError

__all__ = [
    "DEMO_CONFIG",
    "FEATURES",
    "GOLDEN_SET",
    "NUMERIC",
    "TARGET",
    "WINDOW",
    "Narrator",
    "demo_config",
    "evaluate",
    "load_telco",
    "prepare_workspace",
    "run_demo",
    "train_churn_model",
]

NUMERIC = ["tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"]
FEATURES = [
    "gender",
    "SeniorCitizen",
    "Partner",
    "Dependents",
    "tenure",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
    "MonthlyCharges",
    "TotalCharges",
]
TARGET = "Churn"
GOLDEN_SET = "data/golden-set.parquet"
TRAIN_FILE = "data/train-v1.parquet"  # v1's training data, relative to the workspace
RETRAIN_WINDOW = "56d"

DEMO_CONFIG = """\
# steward.yaml written by `steward demo`.
version: 1
systems:
  - name: churn
    task: binary
    owner: retention-analytics@example.com
    risk_tier: high
    intended_use: >-
      Rank current customers by their risk of leaving in the next month, so that the retention team
      calls the riskiest first. Not for pricing, credit or any decision about a single customer
      without a person in the loop.
    target: Churn
    entity_key: customerID
    card:
      factors: >-
        Contract type, tenure, payment method and internet service drive the score; senior citizens
        and gender are tracked as groups whose error rates must stay comparable.
      evaluation_data: A stratified 25% of the training customers, held out from training.
      training_data: IBM's Telco Customer Churn sample (7,043 fictional customers, 2018).
      ethical_considerations: >-
        A call offer is a benefit; customers never scored high are never offered it. Check that
        uplift and error rates do not differ by senior-citizen status.
      caveats: >-
        Fictional data from one telco; retrain and re-validate before using it anywhere else.
"""

# What the demo adds to the system above, besides the contract inferred from the training data.
POLICY = {
    "thresholds": [{"at": 0.5, "action": "contact"}],
    "default_action": "none",
    "holdout": 0.1,
    "review_band": [0.48, 0.52],
    "salt": "churn-demo",
}
WINDOW = "21d"
MONITORS: dict[str, Any] = {"window": WINDOW, "every": "7d", "segments": ["InternetService"]}
SLOS = [
    {"name": "latency", "indicator": "latency", "objective": 0.99, "threshold": 250},
    {
        "name": "realized-auc",
        "indicator": "roc_auc",
        "objective": 0.75,
        "threshold": 0.75,
        "window": "28d",
        "min_events": 1,
    },
]
PLAYBOOKS = [
    {"when": "monitor:drift", "do": ["notify"]},
    {"when": "monitor:data_quality", "do": ["notify"]},
    {"when": "monitor:performance", "do": ["notify", "retrain", "promote_if_better"]},
    {"when": "slo:*", "do": ["notify"]},
]


def load_telco() -> tuple[pd.DataFrame, pd.Series]:
    """The shipped Telco churn data: features (with ``customerID``) and the 0/1 target."""
    with resources.as_file(resources.files("steward.demo") / "data" / "telco-churn.csv") as path:
        frame = pd.read_csv(path)
    frame["TotalCharges"] = pd.to_numeric(frame["TotalCharges"], errors="coerce").fillna(0.0)
    target = (frame.pop("Churn") == "Yes").astype(int)
    return frame, target


def train_churn_model(
    frame: pd.DataFrame, target: pd.Series, C: float = 1.0, *, boosting: bool = False
) -> Pipeline:
    """A scaled, one-hot-encoded logistic regression on every column but ``customerID``; with
    ``boosting``, gradient-boosted trees on the same encoding (what the demo serves: trees do not
    care what scale a broken feature arrives in, and learn a new product's own churn)."""
    features = frame.drop(columns=["customerID"], errors="ignore")
    categorical = [column for column in features if column not in NUMERIC]
    preprocess = make_column_transformer(
        (StandardScaler(), NUMERIC),
        (OneHotEncoder(handle_unknown="ignore"), categorical),
        sparse_threshold=0.0 if boosting else 0.3,
    )
    estimator: Any = (
        HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=0
        )
        if boosting
        else LogisticRegression(C=C, max_iter=1000)
    )
    model = make_pipeline(preprocess, estimator)
    return model.fit(features, target)


def evaluate(model: Pipeline, frame: pd.DataFrame, target: pd.Series) -> dict[str, float]:
    """ROC AUC, PR AUC and Brier score of ``model`` on ``frame``, rounded for the registry."""
    scores = model.predict_proba(frame)[:, 1]
    return {
        "roc_auc": round(float(roc_auc_score(target, scores)), 4),
        "pr_auc": round(float(average_precision_score(target, scores)), 4),
        "brier": round(float(brier_score_loss(target, scores)), 4),
    }


def demo_config(contract: dict[str, Any], window: str = "21d") -> str:
    """The demo's ``steward.yaml``: :data:`DEMO_CONFIG` plus contract, policy, loop and retraining.

    >>> text = demo_config({"on_violation": "flag", "columns": {"tenure": {"type": "int"}}})
    >>> text.splitlines()[0] == DEMO_CONFIG.splitlines()[0]
    True
    """
    config = yaml.safe_load(DEMO_CONFIG)
    system = config["systems"][0]
    command = (
        f"{shlex.quote(sys.executable)} -m steward.demo_retrain --data {{data}} --output {{output}}"
        f" --base {TRAIN_FILE} --boosting"
    )
    system.update(
        contract=contract,
        policy=POLICY,
        monitors=MONITORS,
        slos=SLOS,
        notify={"retries": 0},
        playbooks=PLAYBOOKS,
        retrain={
            "command": command,
            # Eight weeks: labels come two weeks late, so six of them are labeled at week nine.
            "window": RETRAIN_WINDOW,
            "golden_set": GOLDEN_SET,  # relative to the workspace
            "min_margin": 0.02,
            "timeout_seconds": 300,
        },
    )
    header = "".join(line + "\n" for line in DEMO_CONFIG.splitlines() if line.startswith("#"))
    return header + yaml.safe_dump(config, sort_keys=False, width=100)


def prepare_workspace(workspace: Path) -> None:
    """Make ``workspace`` fresh for the demo, refusing to touch a workspace the demo did not write."""
    config = workspace / "steward.yaml"
    if config.exists():
        if not config.read_text().startswith(DEMO_CONFIG.splitlines()[0]):
            raise ConfigError(
                f"{workspace} already holds a steward.yaml that the demo did not write; run the "
                "demo in an empty folder, e.g. `steward --workspace steward-demo demo`"
            )
        for name in (".steward", "data", "cards", "demo-summary.json"):
            target = workspace / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    workspace.mkdir(parents=True, exist_ok=True)
    config.write_text(DEMO_CONFIG)


class Narrator:
    """Tells the story: one line per event, a progress bar per phase (on a terminal).

    >>> Narrator(Console(width=60, color_system=None)).say("v1 registered")
    ✓ v1 registered
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self._progress: Progress | None = None

    def say(self, line: str, mark: str = "[green]✓[/]") -> None:
        """Print one line of the story (above the progress bar when one is showing)."""
        target = self._progress.console if self._progress is not None else self.console
        target.print(f"{mark} {line}", highlight=False)

    def warn(self, line: str) -> None:
        """A line that is a problem in the story (an alert, a drop)."""
        self.say(line, mark="[bold red]![/]")

    @contextmanager
    def phase(self, description: str, total: int) -> Iterator[Callable[[float], None]]:
        """A progress bar for one phase; yields ``advance(steps)``."""
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        with progress:
            self._progress = progress
            task = progress.add_task(description, total=total)
            try:

                def advance(steps: float = 1.0) -> None:
                    progress.advance(task, steps)

                yield advance
            finally:
                self._progress = None


def run_demo(
    workspace: Path,
    *,
    seed: int = 0,
    customers_per_week: int = 400,
    narrator: Narrator | None = None,
    port: int = 0,
    overrides: dict[str, Any] | None = None,
) -> Any:
    """Tell the churn story in a fresh ``workspace``; return the ``DemoRun`` (server still up).

    The caller stops the server with ``run.close()`` or keeps serving with ``run.serve_forever()``.
    """
    from steward.demo.story import Story

    story = Story(
        workspace,
        seed=seed,
        customers_per_week=customers_per_week,
        narrator=narrator or Narrator(),
        overrides=overrides or {},
    )
    return story.tell(port=port)
