"""Steward's CBPE against NannyML's, chunk by chunk, next to the realized metric.

Two data sets, both chunked by day (``freq="1D"`` for Steward, ``chunk_period="D"`` for NannyML):

1. **Simulated covariate shift.** A fixed concept P(y | x) = sigmoid(2x) and a miscalibrated score
   sigmoid(3x + 0.5); the reference has x ~ N(0, 1.5), and the analysis days move x towards the
   decision boundary (x = -1/6), where the scores are uncertain, so quality drops while
   P(y | score) holds: CBPE's assumption.
2. **Telco churn.** ``steward.demo.train_churn_model`` (a logistic regression) trained on 40% of
   the shipped Telco data, a 30% reference, and the other 30% as analysis, ordered by tenure so
   each day holds a different tenure band: real covariate shift with no guarantee that the
   calibration holds.

For each, it prints per chunk and metric the realized value, Steward's estimate with its 95% band,
and NannyML's estimate with its band (+-3 sampling errors), then the mean absolute differences
between the two estimators and between each and the realized value, and the run times. It asserts
nothing.

Run it in the virtualenv that has NannyML (``/work/bench-venv``, NannyML 0.13.1, Steward installed
editable); never install NannyML into Steward's own environment::

    /work/bench-venv/bin/python benchmarks/bench_cbpe_vs_nannyml.py
"""

from __future__ import annotations

import logging
import os
import time
import warnings

# NannyML sends usage statistics unless told not to; a benchmark must not phone home.
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"

import nannyml
import numpy as np
import pandas as pd
from scipy import special

from steward.demo import load_telco, train_churn_model
from steward.monitoring.metrics import CBPE, estimate_performance, realized_performance

METRICS = ("roc_auc", "f1", "precision", "recall")
THRESHOLD = 0.5
START = pd.Timestamp("2024-05-01", tz="UTC")


def simulated(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference (20,000 rows) and 10 analysis days of 2,000, drifting to uncertain scores."""
    rng = np.random.default_rng(seed)

    def draw(n: int, center: float, spread: float) -> pd.DataFrame:
        x = rng.normal(center, spread, size=n)
        label = (rng.uniform(size=n) < special.expit(2 * x)).astype(int)
        return pd.DataFrame({"score": special.expit(3 * x + 0.5), "label": label})

    reference = draw(20_000, 0.0, 1.5)
    days = []
    for day, share in enumerate(np.linspace(0.0, 1.0, 10)):
        # From the reference population (share 0) to one packed at the boundary (share 1).
        frame = draw(2_000, -share / 6, 1.5 - 1.2 * share)
        days.append(frame.assign(event_time=START + pd.Timedelta(days=day)))
    return reference, pd.concat(days, ignore_index=True)


def telco(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and analysis scored by a logistic regression; analysis days by tenure band."""
    features, target = load_telco()
    order = np.random.default_rng(seed).permutation(len(features))
    train, reference, analysis = np.split(order, [int(0.4 * len(order)), int(0.7 * len(order))])
    model = train_churn_model(features.iloc[train], target.iloc[train])

    def scored(rows: np.ndarray) -> pd.DataFrame:
        scores = model.predict_proba(features.iloc[rows])[:, 1]
        frame = pd.DataFrame({"score": scores, "label": target.iloc[rows].to_numpy()})
        return frame.assign(tenure=features["tenure"].iloc[rows].to_numpy())

    analysis_frame = scored(analysis).sort_values("tenure", kind="stable", ignore_index=True)
    day = np.arange(len(analysis_frame)) * 5 // len(analysis_frame)
    analysis_frame["event_time"] = START + pd.to_timedelta(day, unit="D")
    return scored(reference), analysis_frame


def steward_estimates(reference: pd.DataFrame, analysis: pd.DataFrame) -> pd.DataFrame:
    cbpe = CBPE(threshold=THRESHOLD, metrics=METRICS)
    cbpe.fit(reference["score"].to_numpy(), reference["label"].to_numpy())
    table = estimate_performance(analysis, cbpe, freq="1D")
    return table.set_index(["window_start", "metric"])[["value", "lower", "upper"]]


def nannyml_estimates(reference: pd.DataFrame, analysis: pd.DataFrame) -> pd.DataFrame:
    def prepared(frame: pd.DataFrame) -> pd.DataFrame:
        decision = (frame["score"] >= THRESHOLD).astype(int)
        # NannyML's period chunker wants naive timestamps; the reference needs one for its chunks.
        times = frame.get("event_time", pd.Series(START, index=frame.index))
        return frame.assign(decision=decision, timestamp=times.dt.tz_localize(None))

    estimator = nannyml.CBPE(
        y_pred_proba="score",
        y_pred="decision",
        y_true="label",
        problem_type="classification_binary",
        metrics=list(METRICS),
        timestamp_column_name="timestamp",
        chunk_period="D",
    )
    estimator.fit(prepared(reference))
    # The analysis carries no labels, as in production; realized values are computed apart.
    result = estimator.estimate(prepared(analysis).drop(columns=["label"])).filter(
        period="analysis"
    )
    frame = result.to_df()
    starts = pd.to_datetime(frame[("chunk", "start_date")]).dt.tz_localize("UTC")
    rows = []
    for metric in METRICS:
        for start, (value, lower, upper) in zip(
            starts,
            frame[metric][["value", "lower_confidence_boundary", "upper_confidence_boundary"]]
            .to_numpy()
            .tolist(),
            strict=True,
        ):
            rows.append(
                {"window_start": start, "metric": metric, "nannyml": value}
                | {"nannyml_lower": lower, "nannyml_upper": upper}
            )
    return pd.DataFrame(rows).set_index(["window_start", "metric"])


def realized(analysis: pd.DataFrame) -> pd.Series:
    joined = analysis.assign(outcome_value=analysis["label"].astype(float), labeled=True)
    table = realized_performance(joined, threshold=THRESHOLD, freq="1D", by=())
    return table.set_index(["window_start", "metric"])["value"].rename("realized")


def compare(name: str, reference: pd.DataFrame, analysis: pd.DataFrame) -> None:
    started = time.perf_counter()
    ours = steward_estimates(reference, analysis)
    steward_seconds = time.perf_counter() - started
    started = time.perf_counter()
    theirs = nannyml_estimates(reference, analysis)
    nannyml_seconds = time.perf_counter() - started
    table = ours.join(theirs).join(realized(analysis)).reset_index()
    table = table[table["metric"].isin(METRICS)]
    print(f"\n## {name}: reference {len(reference):,} rows, analysis {len(analysis):,} rows")
    print(
        f"{'day':>10} {'metric':>9} {'realized':>8}  {'steward [95% band]':>26}  "
        f"{'nannyml [+-3 SE]':>26}"
    )
    for row in table.sort_values(["metric", "window_start"]).itertuples():
        print(
            f"{row.window_start:%Y-%m-%d} {row.metric:>9} {row.realized:8.4f}  "
            f"{row.value:8.4f} [{row.lower:.4f}, {row.upper:.4f}]  "
            f"{row.nannyml:8.4f} [{row.nannyml_lower:.4f}, {row.nannyml_upper:.4f}]"
        )
    print(
        f"\n{'metric':>9} {'|steward-nannyml|':>18} {'|steward-realized|':>19} "
        f"{'|nannyml-realized|':>19} {'steward band hits':>18} {'nannyml band hits':>18}"
    )
    for metric, group in [*table.groupby("metric"), ("all", table)]:
        ours_hits = (group["lower"] <= group["realized"]) & (group["realized"] <= group["upper"])
        theirs_hits = (group["nannyml_lower"] <= group["realized"]) & (
            group["realized"] <= group["nannyml_upper"]
        )
        print(
            f"{metric:>9} {(group['value'] - group['nannyml']).abs().mean():18.4f} "
            f"{(group['value'] - group['realized']).abs().mean():19.4f} "
            f"{(group['nannyml'] - group['realized']).abs().mean():19.4f} "
            f"{ours_hits.sum():>11}/{len(group):<6} {theirs_hits.sum():>11}/{len(group):<6}"
        )
    print(f"run time: steward {steward_seconds:.2f} s, nannyml {nannyml_seconds:.2f} s")


def main() -> None:
    logging.getLogger("nannyml").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="nannyml")
    print(f"NannyML {nannyml.__version__}, pandas {pd.__version__}, numpy {np.__version__}")
    compare("Simulated covariate shift towards uncertain scores", *simulated())
    compare("Telco churn, logistic regression, analysis days by tenure band", *telco())


if __name__ == "__main__":
    main()
