"""The demo's workspace: its ``steward.yaml`` and the files it writes, and nothing the demo did not write.

:data:`DEMO_CONFIG` is the system ``churn`` as a person would declare it; :func:`demo_config` adds
what the demo derives (the contract inferred from the training data, the policy, monitors, SLOs,
playbooks and the retrain command, ``python -m steward.demo.retrain``). :func:`prepare_workspace`
empties a folder the demo wrote before, and refuses any other; :func:`write_card` writes a model
card to ``cards/``.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from steward.errors import ConfigError

if TYPE_CHECKING:
    from steward.core import Steward

__all__ = [
    "DEMO_CONFIG",
    "GOLDEN_SET",
    "MONITORS",
    "PLAYBOOKS",
    "POLICY",
    "RETRAIN_WINDOW",
    "SLOS",
    "SYSTEM",
    "TRAIN_FILE",
    "WINDOW",
    "demo_config",
    "prepare_workspace",
    "write_card",
]

SYSTEM = "churn"  # the one system of the demo
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
    protected_aliases: [champion]    # once set, champion moves only through an approval
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


def demo_config(contract: dict[str, Any], window: str = "21d") -> str:
    """The demo's ``steward.yaml``: :data:`DEMO_CONFIG` plus contract, policy, loop and retraining.

    >>> text = demo_config({"on_violation": "flag", "columns": {"tenure": {"type": "int"}}})
    >>> text.splitlines()[0] == DEMO_CONFIG.splitlines()[0]
    True
    """
    config = yaml.safe_load(DEMO_CONFIG)
    system = config["systems"][0]
    command = (
        f"{shlex.quote(sys.executable)} -m steward.demo.retrain --data {{data}} --output {{output}}"
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
        for name in (".steward", "data", "cards", "assistant", "demo-summary.json"):
            target = workspace / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    workspace.mkdir(parents=True, exist_ok=True)
    config.write_text(DEMO_CONFIG)


def write_card(steward: Steward, workspace: Path, version: int) -> None:
    """Write the model card of :data:`SYSTEM` v``version`` to ``cards/`` as Markdown and HTML."""
    cards_dir = workspace / "cards"
    cards_dir.mkdir(exist_ok=True)
    card = steward.card(SYSTEM, version)
    (cards_dir / f"{SYSTEM}-v{version}.md").write_text(card.to_markdown())
    (cards_dir / f"{SYSTEM}-v{version}.html").write_text(card.to_html())
