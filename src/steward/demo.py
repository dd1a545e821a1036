"""``steward demo``: the churn story on the Telco data shipped with the package.

What it tells today is the registry's part of the story: a workspace is created, v1 of a churn model
is trained, evaluated and registered with its lineage and card, a retrained v2 is compared with it,
promoted, and rolled back in one command, every move kept in the alias history and the audit log.
Serving, monitoring and the playbooks that close the loop join the story as they are built.

Every figure is computed from the data; ``--seed`` changes the split and so the figures.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from steward.core import Steward
from steward.errors import ConfigError

__all__ = ["DEMO_CONFIG", "load_telco", "prepare_workspace", "run_demo", "train_churn_model"]

NUMERIC = ["tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"]

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
      evaluation_data: A stratified 25% of the customers, held out from training.
      training_data: IBM's Telco Customer Churn sample (7,043 fictional customers, 2018).
      ethical_considerations: >-
        A call offer is a benefit; customers never scored high are never offered it. Check that
        uplift and error rates do not differ by senior-citizen status.
      caveats: >-
        Fictional data from one telco; retrain and re-validate before using it anywhere else.
"""


def load_telco() -> tuple[pd.DataFrame, pd.Series]:
    """The shipped Telco churn data: features (with ``customerID``) and the 0/1 target."""
    with resources.as_file(resources.files("steward") / "data" / "telco-churn.csv") as path:
        frame = pd.read_csv(path)
    frame["TotalCharges"] = pd.to_numeric(frame["TotalCharges"], errors="coerce").fillna(0.0)
    target = (frame.pop("Churn") == "Yes").astype(int)
    return frame, target


def train_churn_model(frame: pd.DataFrame, target: pd.Series, C: float = 1.0) -> Pipeline:
    """A scaled, one-hot-encoded logistic regression on every column but ``customerID``."""
    features = frame.drop(columns=["customerID"], errors="ignore")
    categorical = [column for column in features if column not in NUMERIC]
    preprocess = make_column_transformer(
        (StandardScaler(), NUMERIC),
        (OneHotEncoder(handle_unknown="ignore"), categorical),
    )
    model = make_pipeline(preprocess, LogisticRegression(C=C, max_iter=1000))
    return model.fit(features, target)


def evaluate(model: Pipeline, frame: pd.DataFrame, target: pd.Series) -> dict[str, float]:
    scores = model.predict_proba(frame)[:, 1]
    return {
        "roc_auc": round(float(roc_auc_score(target, scores)), 4),
        "pr_auc": round(float(average_precision_score(target, scores)), 4),
        "brier": round(float(brier_score_loss(target, scores)), 4),
    }


def prepare_workspace(workspace: Path) -> None:
    """Make ``workspace`` fresh for the demo, refusing to touch a workspace the demo did not write."""
    config = workspace / "steward.yaml"
    if config.exists():
        if not config.read_text().startswith(DEMO_CONFIG.splitlines()[0]):
            raise ConfigError(
                f"{workspace} already holds a steward.yaml that the demo did not write; run the "
                "demo in an empty folder, e.g. `steward --workspace steward-demo demo`"
            )
        for name in (".steward", "data", "cards"):
            shutil.rmtree(workspace / name, ignore_errors=True)
    workspace.mkdir(parents=True, exist_ok=True)
    config.write_text(DEMO_CONFIG)


def run_demo(workspace: Path, *, seed: int = 0, say: Callable[[str], Any] = print) -> Steward:
    """Tell the registry story in a fresh ``workspace``; return the open ``Steward``."""
    prepare_workspace(workspace)
    steward = Steward.open(workspace)
    steward.init()
    steward.apply()
    say(f"workspace ready at {workspace} (system 'churn', SQLite store in .steward/)")

    frame, target = load_telco()
    train, test, y_train, y_test = train_test_split(
        frame, target, test_size=0.25, stratify=target, random_state=seed
    )
    data_dir = workspace / "data"
    data_dir.mkdir(exist_ok=True)
    train_file = data_dir / "train.parquet"
    train.assign(Churn=y_train.to_numpy()).to_parquet(train_file, index=False)

    v1_model = train_churn_model(train, y_train, C=1.0)
    v1 = steward.register_model(
        v1_model,
        system="churn",
        data=train_file,
        metrics=evaluate(v1_model, test, y_test),
        description="Logistic regression, C=1.0",
        code_dir=workspace,
    ).version
    steward.move_alias("churn", "champion", v1.version, reason="first release")
    say(f"v{v1.version} registered and made champion: {_metrics(v1.metrics)}")

    # A retrain on a shifted sample with stronger regularisation: the kind of change nobody
    # announces, which the registry must be able to explain afterwards.
    rng = np.random.default_rng(seed)
    recent = train.sample(frac=0.8, random_state=int(rng.integers(1 << 31)))
    v2_model = train_churn_model(recent, y_train.loc[recent.index], C=0.05)
    recent_file = data_dir / "train-recent.parquet"
    recent.assign(Churn=y_train.loc[recent.index].to_numpy()).to_parquet(recent_file, index=False)
    v2 = steward.register_model(
        v2_model,
        system="churn",
        data=recent_file,
        metrics=evaluate(v2_model, test, y_test),
        description="Logistic regression, C=0.05, on a recent 80% sample",
        code_dir=workspace,
    ).version
    steward.move_alias("churn", "challenger", v2.version, reason="retrained")
    say(f"v{v2.version} registered as challenger: {_metrics(v2.metrics)}")

    changed = [row for row in steward.diff("churn", v1.version, v2.version) if row.changed]
    say(
        "what changed v1 -> v2: "
        + "; ".join(
            f"{row.section}.{row.key} {row.a} -> {row.b}"
            for row in changed
            if row.section in ("params", "metrics", "data")
        )
    )

    steward.move_alias("churn", "champion", v2.version, reason="promoted for the demo")
    say(f"v{v2.version} promoted to champion")
    change = steward.rollback("churn", reason="demo: one-command rollback")
    say(f"rolled back: champion v{change.from_version} -> v{change.to_version}")

    cards_dir = workspace / "cards"
    cards_dir.mkdir(exist_ok=True)
    for version in (v1.version, v2.version):
        card = steward.card("churn", version)
        (cards_dir / f"churn-v{version}.md").write_text(card.to_markdown())
        (cards_dir / f"churn-v{version}.html").write_text(card.to_html())
    say(f"model cards written to {cards_dir}")
    check = steward.verify_audit()
    say(f"audit log: {check.n_entries} entries, chain {'intact' if check.ok else 'BROKEN'}")
    return steward


def _metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in metrics.items())
