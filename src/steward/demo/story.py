"""The story ``steward demo`` tells, one simulated week at a time, through the real server and loop.

``Story.tell()`` sets the workspace up, trains and registers v1, starts the HTTP API on a thread, and
replays the weeks of ``steward.demo.simulation.Market``: customers scored through ``steward.Client``,
their outcomes sent two simulated weeks later, and at each week's end one tick of the loop
(``steward.loop.tick.tick(..., now=week_end)``: monitors, SLOs, alerts, playbooks). What the loop did is
read back from the store and told, with its figures (``steward.demo.narration``). The story's end
(uplift against the holdout, a table per week, the audit check) is in ``steward.demo.finale``; between
the churn story's end and the audit check, the support assistant's story (``steward.demo.assistant``)
is told on the same simulated weeks.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sqlalchemy import select

from steward._util.times import parse_window
from steward.client import Client
from steward.core import Steward
from steward.data.contracts import infer_contract
from steward.demo.assistant import tell_assistant
from steward.demo.config import (
    GOLDEN_SET,
    POLICY,
    TRAIN_FILE,
    WINDOW,
    demo_config,
    prepare_workspace,
    write_card,
)
from steward.demo.figures import APPROVER, APPROVER_ID, SYSTEM, DemoRun, WeekFigures
from steward.demo.finale import finish, tell_ending
from steward.demo.model import FEATURES, TARGET, evaluate, load_telco, train_churn_model
from steward.demo.narration import Ledger, approve_after_shadow, narrate_tick
from steward.demo.narrator import Narrator
from steward.demo.simulation import (
    InProcessServer,
    Market,
    Week,
    customers_for_week,
    launch_product,
    observed_churn,
)
from steward.governance.access import Role, add_identity, create_token
from steward.loop.tick import tick
from steward.model.registry import find_system
from steward.store import AliasRow, clock_at

# Held-out customers the playbook compares versions on: enough for the paired test to see a gain
# of a few points of ROC AUC.
GOLDEN_ROWS = 1200

__all__ = ["APPROVER", "DemoRun", "Story", "WeekFigures"]

BATCH = 200


class Story:
    """The state of one demo run; ``tell()`` runs it from an empty folder to the last week."""

    def __init__(
        self,
        workspace: Path,
        *,
        seed: int,
        customers_per_week: int,
        narrator: Narrator,
        overrides: dict[str, Any],
        market: Market | None = None,
    ) -> None:
        self.workspace = workspace.resolve()
        self.seed = seed
        self.customers_per_week = customers_per_week
        self.say = narrator
        self.overrides = overrides
        self.market = market or Market()
        self.rng = np.random.default_rng(seed)
        self.pending: list[pd.DataFrame] = []
        self.weeks: list[WeekFigures] = []
        self.shadow_expected = 0

    # Setting up

    def tell(self, port: int = 0) -> DemoRun:
        """Tell the whole story; the server stays up in the returned ``DemoRun``."""
        started = time.monotonic()
        # One clock for everything the story writes: the simulated weeks end at this hour, and
        # the workspace is set up and v1 registered the hour before they begin.
        self.end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self.start = self.end - timedelta(weeks=self.market.weeks)
        with clock_at(self.start - timedelta(hours=1)):
            train, pool, golden = self._set_up()
            self._register_v1(train, golden)
        self.golden = golden
        self._write_golden_set(golden, pilot=False)
        run = self._serve(port)
        self.ledger = Ledger(self.steward, self.events, self.say, self.registered_auc)
        # The story tells each alert itself; the log notifier (always on) would repeat every line.
        quiet = logging.NullHandler()
        alert_log = logging.getLogger("steward.alerts")
        alert_log.addHandler(quiet)
        alert_log.propagate = False
        try:
            self._replay(pool)
            run.weeks = self.weeks
            ending = tell_ending(run, self.say, self.workspace)
            # The second story: the support assistant, on the same clock and in the same workspace.
            assistant = tell_assistant(
                self.steward,
                self.events,
                self.say,
                self.start,
                seed=self.seed,
                weeks=self.market.weeks,
            )
            run.summary = finish(
                run,
                self.say,
                self.workspace,
                ending,
                seed=self.seed,
                customers_per_week=self.customers_per_week,
                elapsed=time.monotonic() - started,
                assistant=assistant,
            )
        except BaseException:
            run.close()
            raise
        finally:
            alert_log.removeHandler(quiet)
            alert_log.propagate = True
        return run

    def _set_up(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        prepare_workspace(self.workspace)
        frame, target = load_telco()
        data = frame.assign(**{TARGET: target.to_numpy()})
        train, rest = train_test_split(
            data, train_size=0.4, stratify=target, random_state=self.seed
        )
        golden, pool = train_test_split(
            rest, train_size=GOLDEN_ROWS, stratify=rest[TARGET], random_state=self.seed
        )
        contract = infer_contract(train[FEATURES], name=SYSTEM, on_violation="flag").to_dict()
        config = demo_config(contract, window=WINDOW)
        (self.workspace / "steward.yaml").write_text(config)
        # The demo ticks the loop itself, at simulated times.
        overrides = {**self.overrides, "loop_interval": 0, "workspace": str(self.workspace)}
        self.steward = Steward.open(**overrides)
        self.steward.init()
        self.steward.apply()
        self.say.say(
            f"workspace {self.workspace}: system 'churn' (risk tier high), contract of "
            f"{len(contract['columns'])} columns inferred from {len(train):,} training customers, "
            f"policy: contact at score >= 0.5, {POLICY['holdout']:.0%} holdout"
        )
        return train, pool, golden

    def _register_v1(self, train: pd.DataFrame, golden: pd.DataFrame) -> None:
        fit, test = train_test_split(
            train, test_size=0.25, stratify=train[TARGET], random_state=self.seed
        )
        model = train_churn_model(fit[FEATURES], fit[TARGET], boosting=True)
        data_dir = self.workspace / "data"
        data_dir.mkdir(exist_ok=True)
        train_file = self.workspace / TRAIN_FILE
        fit.to_parquet(train_file, index=False)
        # Measured on every held-out customer (the test split and the golden set, all before the
        # launch), so the figure the monitors hold v1 to is not a lucky draw of a few hundred.
        test = pd.concat([test, golden], ignore_index=True)
        metrics = evaluate(model, test[FEATURES], test[TARGET])
        version = self.steward.register_model(
            model,
            system=SYSTEM,
            data=train_file,
            metrics=metrics,
            description="Gradient-boosted trees on the Telco customers before the launch",
            code_dir=self.workspace,
        ).version
        self.steward.move_alias(SYSTEM, "champion", version.version, reason="first release")
        self.registered_auc = float(metrics["roc_auc"])
        self.say.say(
            f"v{version.version} trained on {len(fit):,} customers and made champion: "
            f"ROC AUC {metrics['roc_auc']:.3f}, PR AUC {metrics['pr_auc']:.3f} on "
            f"{len(test):,} held-out customers; model card written"
        )
        write_card(self.steward, self.workspace, version.version)

    def _write_golden_set(self, golden: pd.DataFrame, *, pilot: bool) -> None:
        frame = golden.drop(columns=["customerID"]).reset_index(drop=True)
        if pilot:
            features, churn, is_new = launch_product(
                frame[FEATURES], frame[TARGET].to_numpy(), self.market, self.rng
            )
            frame = features.assign(**{TARGET: churn})
            self.say.say(
                f"the product team adds {int(is_new.sum())} labeled pilot customers of "
                f"'{self.market.new_product}' to the golden set ({len(frame)} customers)"
            )
        frame.to_parquet(self.workspace / GOLDEN_SET, index=False)

    def _serve(self, port: int) -> DemoRun:
        from steward.web import create_app

        self.events = self.steward.events
        server = InProcessServer(create_app(self.steward, events=self.events), port=port).start()
        # A real credential, as in production: the scoring job is a service with the client role.
        # Dana decides approvals as herself, an identity with the approver role.
        add_identity(self.steward, "scoring-job", Role.CLIENT, kind="service")
        add_identity(self.steward, APPROVER_ID, Role.APPROVER)
        token = create_token(self.steward, "scoring-job", expires_in=timedelta(days=1)).secret
        self.client = Client(server.url, token=token)
        self.say.say(
            f"serving v1 at {server.url} (the same HTTP API as `steward serve`); the scoring job "
            "calls it with its own client token"
        )
        return DemoRun(self.steward, self.events, server, self.client, [], {})

    # The weeks

    def _replay(self, pool: pd.DataFrame) -> None:
        start = self.start
        total = self.market.weeks * self.customers_per_week
        # The loop starts once v1 has served a full monitoring window: a window only partly
        # covered by traffic is not comparable with the reference or with the windows after it.
        self.window = parse_window(WINDOW)
        self.say.say(
            f"the loop ticks at each simulated week's end once v1 has served a full "
            f"{WINDOW} window; outcomes arrive {self.market.label_delay.days} days "
            "after each prediction"
        )
        with self.say.phase(f"replaying {self.market.weeks} weeks", total) as advance:
            for number in range(1, self.market.weeks + 1):
                week = Week(
                    number,
                    start + timedelta(weeks=number - 1),
                    start + timedelta(weeks=number),
                )
                figures = WeekFigures(number, week.start.isoformat(), week.end.isoformat())
                self.weeks.append(figures)
                self._score_week(week, pool, figures, advance)
                self._send_outcomes(week.end)
                if week.end - start >= self.window:
                    with clock_at(week.end):  # the loop and the people act at the week's end
                        self._tick(week, figures)
                        self._decide_approvals(week, figures)

    def _score_week(
        self, week: Week, pool: pd.DataFrame, figures: WeekFigures, advance: Any
    ) -> None:
        if week.number == self.market.launch_week:
            self._write_golden_set(self.golden, pilot=True)
        customers = pool.drop(columns=[TARGET])
        frame, natural, is_new = customers_for_week(
            customers, pool[TARGET], week, self.customers_per_week, self.market, self.rng
        )
        records = frame.to_dict("records")
        results: list[dict[str, Any]] = []
        for offset in range(0, len(records), BATCH):
            results += self.client.predict(SYSTEM, records[offset : offset + BATCH])
            advance(len(records[offset : offset + BATCH]))
        scored = pd.DataFrame(results)
        contacted = (scored["decision"].isin(["contact", "review"]) & ~scored["holdout"]).to_numpy()
        churned = observed_churn(natural, contacted, self.market, self.rng)
        due = pd.to_datetime(frame["event_time"], utc=True) + self.market.label_delay
        self.pending.append(
            pd.DataFrame({"prediction_id": scored["id"], "value": churned, "due": due})
        )
        figures.customers, figures.new_product = len(scored), int(is_new.sum())
        figures.contacted = int(contacted.sum())
        figures.held_out = int(scored["holdout"].sum())
        figures.flagged = int(scored["violations"].map(bool).sum())
        figures.champion = int(scored["model_version"].mode().iloc[0])
        self._narrate_week(week, scored, figures)
        figures.shadow_scored = self._wait_for_shadows(len(scored))

    def _narrate_week(self, week: Week, scored: pd.DataFrame, figures: WeekFigures) -> None:
        text = (
            f"{week.label}: {figures.customers} customers scored by v{figures.champion}, "
            f"{figures.contacted} called, {figures.held_out} held out"
        )
        if week.number == self.market.launch_week:
            self.say.say(text)
            self.say.warn(
                f"product launch: {figures.new_product} of {figures.customers} customers on "
                f"'{self.market.new_product}' with higher MonthlyCharges, and its new billing "
                "pipeline sends TotalCharges in cents"
            )
        else:
            self.say.say(text)
        if figures.flagged > 0.05 * figures.customers:
            rules = Counter(
                f"{violation['column']} ({violation['rule']})"
                for violations in scored["violations"]
                for violation in violations
            )
            top = ", ".join(f"{name}: {count}" for name, count in rules.most_common(3))
            self.say.warn(
                f"the contract flagged {figures.flagged} of {figures.customers} records at the "
                f"door: {top}"
            )

    def _wait_for_shadows(self, n_scored: int) -> int:
        """Wait (briefly) until the shadow thread has logged this week's shadow scores."""
        with self.steward.store.read() as session:
            system = find_system(session, SYSTEM)
            aliases = {
                row.name: row.version
                for row in session.scalars(select(AliasRow).where(AliasRow.system_id == system.id))
            }
        shadow = aliases.get("shadow")
        if shadow is None or shadow == aliases.get("champion"):
            return 0
        self.shadow_expected += n_scored
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.events.count("shadow", SYSTEM) >= self.shadow_expected:
                break
            time.sleep(0.05)
        return n_scored

    def _send_outcomes(self, now: datetime) -> None:
        if not self.pending:
            return
        pending = pd.concat(self.pending, ignore_index=True)
        ready = pending[pending["due"] <= pd.Timestamp(now)]
        self.pending = [pending[pending["due"] > pd.Timestamp(now)]]
        records = [
            {"prediction_id": pid, "value": float(value), "event_time": due.to_pydatetime()}
            for pid, value, due in zip(
                ready["prediction_id"], ready["value"], ready["due"], strict=True
            )
        ]
        for offset in range(0, len(records), 5000):
            self.client.log_outcomes(SYSTEM, records[offset : offset + 5000])

    def _tick(self, week: Week, figures: WeekFigures) -> None:
        tick(self.steward, self.events, now=week.end, systems=[SYSTEM])
        if narrate_tick(self.ledger, week, figures):
            time.sleep(1.2)  # the server re-reads aliases once a second

    def _decide_approvals(self, week: Week, figures: WeekFigures) -> None:
        """A person approves a promotion once the challenger has shadowed a week of traffic."""
        if approve_after_shadow(self.ledger, week, figures):
            time.sleep(1.2)  # the server re-reads aliases once a second
