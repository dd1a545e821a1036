"""The demo's training command: what a team's own ``train.py`` would be.

The playbook's ``retrain`` step runs it with the recent window of predictions joined with their
outcomes (``--data``, Parquet or CSV, the input columns plus the target ``Churn``) and registers the
model it saves at ``--output``::

    python -m steward.demo.retrain --data window.parquet --output model.skops \
        --base data/train-v1.parquet

It trains the same pipeline as v1 (``steward.demo.model.train_churn_model``) on the history it was
trained on (``--base``) plus the labeled recent window, as a team's retraining job would, and saves it
with skops.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from steward.data.contracts import read_table
from steward.demo.model import FEATURES, TARGET, train_churn_model
from steward.model.flavors import save_sklearn

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Train on ``--data`` and save to ``--output``; print one line; exit 2 on unusable data."""
    parser = argparse.ArgumentParser(prog="python -m steward.demo.retrain", description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="Parquet or CSV with Churn.")
    parser.add_argument("--output", required=True, type=Path, help="Where to save (.skops).")
    parser.add_argument("--C", type=float, default=1.0, help="Inverse regularisation strength.")
    parser.add_argument("--base", type=Path, help="Earlier training data to train on as well.")
    parser.add_argument("--boosting", action="store_true", help="Gradient-boosted trees.")
    arguments = parser.parse_args(argv)
    frame = read_table(arguments.data)
    if arguments.base is not None:
        frame = pd.concat([read_table(arguments.base), frame], ignore_index=True)
    missing = [column for column in (TARGET, *FEATURES) if column not in frame.columns]
    if missing:
        print(f"{arguments.data}: missing columns {', '.join(missing)}", file=sys.stderr)
        return 2
    frame = frame.dropna(subset=[TARGET])
    target = (frame[TARGET].astype(float) > 0.5).astype(int)
    if target.nunique() < 2:
        print(f"{arguments.data}: {len(frame)} labeled rows, all of one class", file=sys.stderr)
        return 2
    model = train_churn_model(frame[FEATURES], target, C=arguments.C, boosting=arguments.boosting)
    saved = save_sklearn(model, arguments.output)
    if saved != arguments.output:  # save_sklearn names the file .skops; honour the path asked for
        saved = saved.replace(arguments.output)
    print(f"trained on {len(frame)} rows ({target.mean():.1%} churned); saved {saved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
