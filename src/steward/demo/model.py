"""The demo's data and model: the shipped Telco churn data, the churn pipeline and its metrics.

``steward.demo.story`` trains v1 with :func:`train_churn_model`, the retrain command
(``python -m steward.demo.retrain``) trains v2 with it, and the tests and benchmarks use it as a
real scikit-learn model on real data.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

__all__ = ["FEATURES", "NUMERIC", "TARGET", "evaluate", "load_telco", "train_churn_model"]

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
