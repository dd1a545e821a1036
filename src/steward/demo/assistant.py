"""The demo's second story: a support assistant whose prompt change made its answers longer and dearer.

The same twelve simulated weeks as the churn story, at the support desk. The system ``assistant``
(task ``llm``) answers customers with the prompt ``answer``, served by the fake OpenAI-compatible
provider Steward ships (``steward.testing.FakeLLMServer``, seeded with the demo's seed, on the
loopback: nothing calls the network):

1. v1 ("answer briefly") passes the eval gate (``steward.llm.evaluate.run_gate``) and takes
   ``production``, citing the run;
2. each week a few hundred questions are answered by the version ``production`` points at, through
   the fake's engine (``FakeLLMServer.fake.chat``: the same answers its HTTP API gives, without the
   round trip), and logged with event times inside the week (``steward.llm.calls.record_calls``,
   what ``POST /v1/systems/assistant/llm-calls:log`` runs), priced by the system's ``prices:``;
3. in week five v2 ("be thorough", on ``fake-model-2``) passes the same gate: the eval set's
   word-count limit is loose. The fake answers ``fake-model-2`` with ``verbosity`` 1.6
   (``configure(model=...)``): the fake cannot read instructions, and a per-model knob is the one
   way the same fake answers v1 and v2 differently inside one gate run, which calls both back to
   back;
4. at the week's end the loop (``steward.loop.tick.tick``) runs the ``llm_outputs`` monitor
   against a fixed two-week baseline (length, cost and latency drift alarm), the cost SLO burns,
   and its playbook moves ``production`` back to v1 (``rollback_prompt``). The team then adds the
   case that would have caught it (the week-five question v2 answered at greatest length, no
   longer than v1's longest answer, critical) and re-runs the gate on v2: it fails, as
   ``steward eval run`` would with exit 1.

Every line is read back from what Steward stored (the event log, monitor results, SLO evaluations,
alerts, actions, label moves and eval runs); :func:`tell_assistant` returns the figures
``demo-summary.json`` keeps under ``assistant``. ``--seed`` changes the questions and the answers,
so the figures, not the story.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from statistics import fmean
from typing import Any

import numpy as np
import pandas as pd
import yaml
from rich.table import Table
from sqlalchemy import select

from steward.core import Steward
from steward.data.events import EventLog
from steward.demo.narrator import Narrator
from steward.demo.simulation import Week
from steward.errors import ConfigError, InvalidInputError, StewardError
from steward.llm import prompts
from steward.llm.calls import record_calls
from steward.llm.cost import price_book
from steward.llm.evals.runner import EvalResult
from steward.llm.evaluate import GateOutcome, run_gate
from steward.loop.tick import tick
from steward.model.registry import find_system
from steward.monitoring.result import MIN_ROWS
from steward.store import (
    ActionRow,
    AlertRow,
    MonitorResultRow,
    PromptLabelMove,
    SLOEvaluationRow,
    clock_at,
)
from steward.testing import FakeLLMServer
from steward.testing.protocol import parse_chat_body

__all__ = [
    "ASSISTANT",
    "CALLS_PER_WEEK",
    "CHANGE_WEEK",
    "COST_SLO",
    "EVAL_FILE",
    "PRICES",
    "PROMPT",
    "PROMPT_FILE",
    "THOROUGH_MODEL",
    "THOROUGH_VERBOSITY",
    "AssistantWeek",
    "assistant_config",
    "tell_assistant",
]

ASSISTANT = "assistant"  # the system
PROMPT = "answer"  # its one prompt
PROMPT_FILE = "assistant/prompts/answer.yaml"  # relative to the workspace
EVAL_FILE = "assistant/evals/answer.yaml"
MODEL, THOROUGH_MODEL = "fake-model", "fake-model-2"
THOROUGH_VERBOSITY = 1.6  # the fake's answer-length multiplier for THOROUGH_MODEL
REFUSAL_RATE = 0.02  # a few refusals, as any assistant has; the same for both models
CALLS_PER_WEEK = 400  # the output monitor needs 100 calls a side; 400 sees a 1.6x change
CHANGE_WEEK = 5
FIRST_TICK_WEEK = 3  # the output monitor's baseline is weeks 1 and 2
LOOSE_WORDS = 120  # the eval set's word limit before the incident
GATE_ACTOR = "ci"  # the CI job runs the gate and, when it passes, moves production
PRICES = {"input": 1.0, "output": 15.0}  # US dollars per million tokens, for both models
COST_SLO: dict[str, Any] = {
    "name": "answer-cost",
    "indicator": "cost",
    "objective": 0.95,
    "threshold": 0.0009,  # dollars a call
    "window": "28d",
    "min_events": 20,
    # The loop ticks once a simulated week: a week against its last day, not minutes.
    "alerts": [{"long": "7d", "short": "1d", "burn_rate": 2.0, "severity": "ticket"}],
}
SLO_RULE = f"slo:{COST_SLO['name']}"

_HEADER = "# Written by `steward demo` (the support assistant's story).\n"
_SYSTEM_V1 = (
    "You are the support assistant of Northwind Fibre. Answer the customer's question briefly "
    "and politely."
)
_SYSTEM_V2 = (
    "You are the support assistant of Northwind Fibre. Be thorough: explain each step, and "
    "mention related options the customer may not know about."
)
# (question, a word its answer must mention) for the eval set; the fake restates a question's
# topic words, so a correct answer names them.
_EVAL_QUESTIONS = (
    ("Where is my parcel?", "parcel"),
    ("How do I restart my router?", "router"),
    ("Can I change my billing date?", "billing"),
    ("Why is my bill higher this month?", "bill"),
    ("How do I cancel my contract?", "contract"),
    ("Is fibre available at my address?", "fibre"),
    ("How do I add a second line?", "line"),
    ("What does the late fee cover?", "late"),
    ("Can I pause my subscription?", "subscription"),
    ("How do I update my payment card?", "card"),
)
# The questions customers ask, with details drawn for each (so no two requests are the same).
_QUESTIONS = (
    "Where is my parcel? Order {order} was due on {day}.",
    "My router drops the connection every {minutes} minutes. How do I fix it?",
    "Can I move my billing date to day {date} of the month?",
    "Why is my bill {amount} euros higher this month?",
    "How do I cancel my contract before {month}?",
    "Is fibre available at {number} {street}?",
    "How do I add a second line for my {relative}?",
    "What does the late fee of {amount} euros cover?",
    "Can I pause my subscription while I travel in {month}?",
    "How do I update the card ending in {digits}?",
    "Why has my internet been slow in the evening since {day}?",
    "How do I port my number {phone} from another provider?",
)
_DETAILS: dict[str, tuple[str, ...]] = {
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
    "month": ("January", "March", "May", "July", "September", "November"),
    "street": ("Harbour Road", "Mill Lane", "Station Street", "Elm Grove", "Quay Side"),
    "relative": ("daughter", "son", "partner", "mother", "father"),
}


@dataclass
class AssistantWeek:
    """What one simulated week did at the support desk, for its table and the summary."""

    week: int
    start: str
    end: str
    served_by: int = 0  # the prompt version production pointed at
    calls: int = 0
    mean_output_tokens: float = 0.0
    cost_per_call: float = 0.0
    over_threshold: int = 0  # calls dearer than the cost SLO's threshold
    outputs: str = ""  # the llm_outputs monitor's status at the week's end
    cost_slo: str = ""
    cost_burn_7d: float | None = None
    alerts_fired: list[str] = field(default_factory=list)
    alerts_resolved: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


def assistant_config(start: datetime, base_url: str) -> dict[str, Any]:
    """The system ``assistant`` as steward.yaml declares it; ``start`` begins the output baseline.

    >>> declared = assistant_config(datetime(2026, 1, 5), "http://127.0.0.1:8900/v1")
    >>> declared["slos"][0]["indicator"], declared["playbooks"][1]["do"]
    ('cost', ['notify', 'rollback_prompt'])
    """
    price = [{"valid_from": "2025-01-01", **PRICES}]
    return {
        "name": ASSISTANT,
        "task": "llm",
        "owner": "support-desk@example.com",
        "risk_tier": "medium",
        "intended_use": (
            "Answer customers' support questions in the chat; a person takes over on request."
        ),
        "providers": {"fake": {"kind": "openai", "base_url": base_url}},
        "prompts": [{"name": PROMPT, "file": PROMPT_FILE, "evals": EVAL_FILE}],
        "prices": {MODEL: price, THOROUGH_MODEL: price},
        "monitors": {"window": "7d", "every": "7d"},
        # A fixed baseline: the first two weeks, so a change is compared with how v1 answered.
        "outputs": {"reference_start": start.isoformat(), "reference_window": "14d"},
        "slos": [COST_SLO],
        "notify": {"retries": 0},
        "playbooks": [
            {"when": "monitor:llm_outputs", "do": ["notify"]},
            {"when": SLO_RULE, "do": ["notify", "rollback_prompt"]},
        ],
    }


def tell_assistant(
    steward: Steward,
    events: EventLog,
    say: Narrator,
    start: datetime,
    *,
    seed: int,
    weeks: int = 12,
    calls_per_week: int = CALLS_PER_WEEK,
) -> dict[str, Any]:
    """Tell the assistant's story over ``weeks`` simulated weeks from ``start``; return its figures.

    Adds the system to the workspace's steward.yaml (which must exist) and applies it, so it runs
    after the churn story in the same workspace, or alone in a fresh one. The fake provider runs
    for the story only; steward.yaml keeps its URL.
    """
    if weeks < CHANGE_WEEK + 1:
        raise InvalidInputError(
            f"the assistant's story needs at least {CHANGE_WEEK + 1} weeks, got {weeks}: the "
            f"prompt changes in week {CHANGE_WEEK} and the alerts resolve a week later; pass "
            "weeks=12 (the demo's)"
        )
    if calls_per_week < MIN_ROWS:
        raise InvalidInputError(
            f"the assistant's story needs at least {MIN_ROWS} calls a week, got {calls_per_week}:"
            f" the output monitor compares at least {MIN_ROWS} calls a side; pass "
            f"calls_per_week={CALLS_PER_WEEK} (the default)"
        )
    if not steward.settings.config_path.exists():
        raise ConfigError(
            f"{steward.settings.config_path} does not exist; tell the assistant's story in a demo "
            "workspace (steward.demo.prepare_workspace, then Steward.open and init)"
        )
    fake = FakeLLMServer(seed=seed, refusal_rate=REFUSAL_RATE).start()
    try:
        fake.configure(model=THOROUGH_MODEL, verbosity=THOROUGH_VERBOSITY)
        desk = _Desk(steward, events, say, fake, start, seed=seed, calls=calls_per_week)
        return desk.tell(weeks)
    finally:
        fake.stop()


class _Desk:
    """The state of one telling: the workspace, the fake, the figures and what was read so far."""

    def __init__(
        self,
        steward: Steward,
        events: EventLog,
        say: Narrator,
        fake: FakeLLMServer,
        start: datetime,
        *,
        seed: int,
        calls: int,
    ) -> None:
        self.steward, self.events, self.say, self.fake = steward, events, say, fake
        self.start, self.calls = start, calls
        self.root = steward.settings.config_path.parent
        # Its own stream of draws: the churn story's figures do not move.
        self.rng = np.random.default_rng([seed, 7])
        self.weeks: list[AssistantWeek] = []
        self.gates: list[GateOutcome] = []
        self.seen: dict[str, int] = {}
        self.open_alerts: dict[int, tuple[str, int]] = {}
        self.figures: dict[str, Any] = {}

    def tell(self, n_weeks: int) -> dict[str, Any]:
        """Set up, then each week: answer, tick, and after a rollback add the missing case."""
        with clock_at(self.start - timedelta(hours=1)):
            self._set_up()
        total = n_weeks * self.calls
        with self.say.phase("answering the assistant's questions", total) as advance:
            for number in range(1, n_weeks + 1):
                week = Week(
                    number,
                    self.start + timedelta(weeks=number - 1),
                    self.start + timedelta(weeks=number),
                )
                figures = AssistantWeek(number, week.start.isoformat(), week.end.isoformat())
                self.weeks.append(figures)
                if number == CHANGE_WEEK:
                    with clock_at(week.start):
                        self._change_prompt()
                self._answer(week, figures)
                advance(self.calls)
                if number >= FIRST_TICK_WEEK:
                    with clock_at(week.end):
                        rolled_back = self._tick(week, figures)
                    if rolled_back and "added_case" not in self.figures:
                        with clock_at(week.end + timedelta(hours=2)):  # the next morning
                            self._add_the_missing_case(week)
        self.say.console.print(_week_table(self.weeks))
        return self._summary()

    # Setting up

    def _set_up(self) -> None:
        (self.root / PROMPT_FILE).parent.mkdir(parents=True, exist_ok=True)
        (self.root / EVAL_FILE).parent.mkdir(parents=True, exist_ok=True)
        (self.root / PROMPT_FILE).write_text(_prompt_file(MODEL, _SYSTEM_V1))
        (self.root / EVAL_FILE).write_text(_eval_file())
        config_path = self.steward.settings.config_path
        text = config_path.read_text()
        config = yaml.safe_load(text)
        config["systems"] = [s for s in config.get("systems") or [] if s["name"] != ASSISTANT]
        config["systems"].append(assistant_config(self.start, self.fake.base_url))
        header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
        config_path.write_text(header + yaml.safe_dump(config, sort_keys=False, width=100))
        self.steward.apply()
        self.say.say(
            f"meanwhile, at the support desk: system '{ASSISTANT}' (task llm) answers customers "
            f"with prompt '{PROMPT}', on the fake OpenAI-compatible provider of steward.testing "
            f"at {self.fake.base_url} (loopback, no network, seed {self.fake.knobs.seed}); "
            f"${PRICES['input']:.2f} and ${PRICES['output']:.2f} per million input and output "
            f"tokens; SLO '{COST_SLO['name']}': {COST_SLO['objective']:.0%} of answers at most "
            f"${COST_SLO['threshold']} each"
        )
        outcome = self._gate(1)
        self._move_to_production(1, outcome, reason="first release")

    def _gate(self, version: int) -> GateOutcome:
        outcome = run_gate(
            self.steward.store,
            self.steward.system(ASSISTANT).declared,
            PROMPT,
            base_dir=self.root,
            actor=GATE_ACTOR,
            candidate=version,
            against="production",
        )
        self.gates.append(outcome)
        return outcome

    def _move_to_production(self, version: int, outcome: GateOutcome, *, reason: str) -> None:
        change = prompts.move_label(
            self.steward.store,
            ASSISTANT,
            PROMPT,
            "production",
            version,
            actor=GATE_ACTOR,
            reason=reason,
        )
        spec = prompts.get_prompt(self.steward.store, ASSISTANT, PROMPT, version).parsed
        words = f"its answers averaged {_mean_words(outcome.candidate):.0f} words"
        if outcome.baseline is not None:
            words += (
                f" against {_mean_words(outcome.baseline):.0f} for v{outcome.run.baseline_version}"
                f", all under the eval set's loose limit of {LOOSE_WORDS}"
            )
        self.say.say(
            f"{PROMPT} v{version} on {spec.model}: {_verdict(outcome)}; {words}: production -> "
            f"v{version}, citing eval run #{change.eval_run_id}"
        )

    # The weeks

    def _change_prompt(self) -> None:
        (self.root / PROMPT_FILE).write_text(_prompt_file(THOROUGH_MODEL, _SYSTEM_V2))
        self.steward.apply()
        version = prompts.list_prompt_versions(self.steward.store, ASSISTANT, PROMPT)[-1].version
        self.say.warn(
            f"prompt change: {PROMPT} v{version} tells the assistant to 'be thorough', on "
            f"{THOROUGH_MODEL}; the CI job runs the eval gate against production"
        )
        outcome = self._gate(version)
        if not outcome.decision.passed:  # the weak eval set lets it through, for every seed
            raise StewardError(
                f"the demo expected v{version} to pass its eval set: {_verdict(outcome)}"
            )
        self._move_to_production(version, outcome, reason="thorough answers")

    def _answer(self, week: Week, figures: AssistantWeek) -> None:
        """Answer the week's questions, each with the version production pointed at when it was
        asked; log them, then read them back for the week's figures."""
        history = prompts.label_history(self.steward.store, ASSISTANT, PROMPT, "production")
        specs = {
            version: prompts.get_prompt(self.steward.store, ASSISTANT, PROMPT, version).parsed
            for version in {change.to_version for change in history if change.to_version}
        }
        seconds = np.sort(self.rng.uniform(0, (week.end - week.start).total_seconds(), self.calls))
        calls = []
        for index, offset in enumerate(seconds):
            at = week.start + timedelta(seconds=float(offset))
            version = [change.to_version for change in history if change.moved_at <= at][-1]
            question = self._question()
            request = specs[version or 1].request({"question": question})
            body = parse_chat_body({"model": request.model, "messages": request.messages})
            answer = self.fake.fake.chat(body)
            tokens = answer.usage.completion
            calls.append(
                {
                    "id": f"{ASSISTANT}-w{week.number:02d}-{index:04d}",
                    "event_time": at,
                    "entity_key": f"customer-{int(self.rng.integers(1, 20_000)):05d}",
                    "prompt": PROMPT,
                    "prompt_version": version,
                    "provider": "openai",
                    "request_model": request.model,
                    "response_model": request.model,
                    "input_tokens": answer.usage.prompt,
                    "output_tokens": tokens,
                    "finish_reasons": [answer.finish_reason],
                    # Time to the first token, then a steady rate per token.
                    "latency_ms": round(300 + 20 * tokens + float(self.rng.gamma(2.0, 40.0)), 1),
                    "input_text": question,
                    "output_text": answer.content or answer.refusal or "",
                }
            )
        declared = self.steward.system(ASSISTANT).declared
        record_calls(
            self.events, ASSISTANT, calls, prices=price_book(declared), text=declared.call_text
        )
        stored = self.events.scan("llm_call", ASSISTANT, week.start, week.end).to_pandas()
        figures.served_by = int(stored["prompt_version"].mode().iloc[0])
        figures.calls = len(stored)
        figures.mean_output_tokens = float(stored["output_tokens"].mean())
        figures.cost_per_call = float(stored["cost"].mean())
        figures.over_threshold = int((stored["cost"] > COST_SLO["threshold"]).sum())
        self.say.say(
            f"{week.label}: {figures.calls} questions answered by {PROMPT} v{figures.served_by}: "
            f"{figures.mean_output_tokens:.1f} output tokens and ${figures.cost_per_call:.5f} a "
            "call"
            + (
                f"; {figures.over_threshold} cost more than ${COST_SLO['threshold']}"
                if figures.over_threshold
                else ""
            )
        )

    def _question(self) -> str:
        template = _QUESTIONS[int(self.rng.integers(len(_QUESTIONS)))]
        pick = {name: str(self.rng.choice(values)) for name, values in _DETAILS.items()}
        numbers = {
            "order": int(self.rng.integers(100_000, 999_999)),
            "minutes": int(self.rng.integers(5, 60)),
            "date": int(self.rng.integers(1, 29)),
            "amount": int(self.rng.integers(5, 40)),
            "number": int(self.rng.integers(1, 200)),
            "digits": f"{int(self.rng.integers(0, 10_000)):04d}",
            "phone": f"06-{int(self.rng.integers(10_000_000, 99_999_999))}",
        }
        return template.format(**pick, **numbers)

    # The loop

    def _tick(self, week: Week, figures: AssistantWeek) -> bool:
        """One tick at the week's end, told from what it stored; True if it rolled back."""
        tick(self.steward, self.events, now=week.end, systems=[ASSISTANT])
        rows = self._new_rows()
        for result in rows["monitor"]:
            if result.monitor == "llm_outputs":
                figures.outputs = result.status
                if result.status == "breach":  # the change's, or a false alarm (told as such)
                    self.figures.setdefault("alarms", []).append(_alarm(week, result))
        for evaluation in rows["slo"]:
            figures.cost_slo = evaluation.status
            figures.cost_burn_7d = (evaluation.burn_rates or {}).get("7d")
        for alert in rows["alert"]:
            self.open_alerts[alert.id] = (alert.rule, week.number)
            figures.alerts_fired.append(alert.rule)
            self.say.warn(f"alert fired: {alert.rule} ({alert.severity}): {alert.summary}")
        rolled_back = False
        for action in rows["action"]:
            figures.actions.append(f"{action.kind}:{action.status}")
            self.say.say(f"playbook step '{action.kind}': {action.status}: {action.reason}")
            if action.kind == "rollback_prompt" and action.status == "done":
                rolled_back = True
                self._tell_burn(week, action.id)
        self._tell_resolved(week, figures)
        return rolled_back

    def _new_rows(self) -> dict[str, list[Any]]:
        tracked: dict[str, Any] = {
            "monitor": MonitorResultRow,
            "slo": SLOEvaluationRow,
            "alert": AlertRow,
            "action": ActionRow,
        }
        found: dict[str, list[Any]] = {}
        with self.steward.store.read() as session:
            system_id = find_system(session, ASSISTANT).id
            for name, model in tracked.items():
                rows = list(
                    session.scalars(
                        select(model)
                        .where(model.system_id == system_id, model.id > self.seen.get(name, 0))
                        .order_by(model.id)
                    )
                )
                if rows:
                    self.seen[name] = rows[-1].id
                found[name] = rows
        return found

    def _tell_burn(self, week: Week, action_id: int) -> None:
        """The SLO's burn and the label move the playbook made, as stored."""
        with self.steward.store.read() as session:
            evaluation = session.scalars(
                select(SLOEvaluationRow)
                .where(
                    SLOEvaluationRow.system_id == find_system(session, ASSISTANT).id,
                    SLOEvaluationRow.name == COST_SLO["name"],
                )
                .order_by(SLOEvaluationRow.id.desc())
                .limit(1)
            ).one()
            moves = session.scalars(
                select(PromptLabelMove)
                .where(PromptLabelMove.system_id == evaluation.system_id)
                .order_by(PromptLabelMove.id)
            ).all()
        last = moves[-1]
        self.figures["rollback"] = {
            "week": week.number,
            "action_id": action_id,
            "from": last.from_version,
            "to": last.to_version,
            "moved_by": last.moved_by,
            "moved_at": last.moved_at.isoformat(),
        }
        self.figures["slo"] = {
            "week": week.number,
            "status": evaluation.status,
            "sli": evaluation.sli,
            "budget_remaining": evaluation.budget_remaining,
            "burn_rates": dict(evaluation.burn_rates),
        }
        burn = evaluation.burn_rates
        self.say.warn(
            f"the cost SLO burned {burn.get('7d') or 0:.1f}x its budget over the week and "
            f"{burn.get('1d') or 0:.1f}x over its last day; over {COST_SLO['window']}, "
            f"{evaluation.sli or 0:.1%} of answers within ${COST_SLO['threshold']} against "
            f"{COST_SLO['objective']:.0%}: label production moved v{last.from_version} -> "
            f"v{last.to_version} by {last.moved_by} at {last.moved_at:%d %b %H:%M}"
        )

    def _tell_resolved(self, week: Week, figures: AssistantWeek) -> None:
        if not self.open_alerts:
            return
        with self.steward.store.read() as session:
            resolved = list(
                session.scalars(
                    select(AlertRow).where(
                        AlertRow.id.in_(list(self.open_alerts)), AlertRow.state == "resolved"
                    )
                )
            )
        for alert in resolved:
            rule, since = self.open_alerts.pop(alert.id)
            figures.alerts_resolved.append(rule)
            self.say.say(
                f"alert resolved: {rule}, firing since week {since}, resolved by "
                f"{alert.resolved_by or 'steward'}"
            )

    # After the incident

    def _add_the_missing_case(self, week: Week) -> None:
        """The eval set gains the case that would have caught v2; the gate on v2 now fails."""
        calls = self.events.scan("llm_call", ASSISTANT, self.start, week.end).to_pandas()
        calls["words"] = calls["output_text"].str.split().str.len()
        rolled_back_from = int(self.figures["rollback"]["from"])
        before = calls[calls["prompt_version"] != rolled_back_from]
        after = calls[calls["prompt_version"] == rolled_back_from]
        limit = int(before["words"].max())
        longest = after.loc[after["words"].idxmax()]
        case = {
            "id": f"incident-week-{week.number}",
            "description": f"a question v{rolled_back_from} answered at length in week "
            f"{week.number}: no longer than the longest answer production gave before",
            "critical": True,
            "vars": {"question": str(longest["input_text"])},
            "assert": [{"type": "word-count", "value": {"max": limit}}],
        }
        eval_set = yaml.safe_load((self.root / EVAL_FILE).read_text())
        eval_set["cases"].append(case)
        (self.root / EVAL_FILE).write_text(_HEADER + yaml.safe_dump(eval_set, sort_keys=False))
        self.say.say(
            f'the team adds the case that would have caught it: "{longest["input_text"]}", '
            f"which v{rolled_back_from} answered in {int(longest['words'])} words; critical, at "
            f"most {limit} words (the longest answer before v{rolled_back_from}, over "
            f"{len(before):,} calls)"
        )
        outcome = self._gate(rolled_back_from)
        self.say.warn(
            f"re-running the gate on v{rolled_back_from}: {_verdict(outcome)}; "
            f"`steward eval run {ASSISTANT} --prompt {PROMPT} --version {rolled_back_from}` "
            f"exits {0 if outcome.decision.passed else 1} (eval run #{outcome.run.id})"
        )
        self.figures["added_case"] = {
            "id": case["id"],
            "question": str(longest["input_text"]),
            "max_words": limit,
            "production_words": int(longest["words"]),
            "eval_run_id": outcome.run.id,
        }

    # The end

    def _summary(self) -> dict[str, Any]:
        calls = self.events.scan("llm_call", ASSISTANT).to_pandas()
        periods = {
            "before": [w for w in self.weeks if w.week < CHANGE_WEEK],
            "during": [w for w in self.weeks if w.week == CHANGE_WEEK],
            "after": [w for w in self.weeks if w.week > CHANGE_WEEK],
        }
        figures = {name: _period(calls, weeks) for name, weeks in periods.items()}
        before, during = figures["before"], figures["during"]
        length = during["mean_output_tokens"] / before["mean_output_tokens"]
        cost = during["cost_per_call"] / before["cost_per_call"]
        production = prompts.get_prompt(self.steward.store, ASSISTANT, PROMPT, "production")
        last = self.gates[-1]
        self.say.say(
            f"the assistant's story: in week {CHANGE_WEEK}, answers of "
            f"{'/'.join(f'v{v}' for v in during['versions'])} were {length - 1:+.0%} longer "
            f"({before['mean_output_tokens']:.1f} -> {during['mean_output_tokens']:.1f} output "
            f"tokens) and {cost - 1:+.0%} dearer (${before['cost_per_call']:.5f} -> "
            f"${during['cost_per_call']:.5f} a call); production is v{production.version}, and "
            f"the eval set {'passes' if last.decision.passed else 'now fails'} "
            f"v{last.run.version}"
        )
        return {
            "system": ASSISTANT,
            "prompt": PROMPT,
            "calls_per_week": self.calls,
            "change_week": CHANGE_WEEK,
            "models": {"v1": MODEL, "thorough": THOROUGH_MODEL},
            "thorough_verbosity": THOROUGH_VERBOSITY,
            "prices": PRICES,
            "cost_threshold": COST_SLO["threshold"],
            "versions": [
                version.version
                for version in prompts.list_prompt_versions(self.steward.store, ASSISTANT, PROMPT)
            ],
            "production": production.version,
            **figures,
            "length_ratio": length,
            "cost_ratio": cost,
            **self.figures,
            "eval_runs": [_gate_figures(outcome) for outcome in self.gates],
            "weeks": [asdict(week) for week in self.weeks],
        }


def _period(calls: pd.DataFrame, weeks: list[AssistantWeek]) -> dict[str, Any]:
    """Calls, mean output tokens and cost per call over ``weeks``, from the logged calls."""
    if not weeks:
        return {"weeks": [], "calls": 0, "mean_output_tokens": None, "cost_per_call": None}
    times = pd.to_datetime(calls["event_time"], utc=True)
    inside = calls[(times >= pd.Timestamp(weeks[0].start)) & (times < pd.Timestamp(weeks[-1].end))]
    return {
        "weeks": [week.week for week in weeks],
        "versions": sorted(int(v) for v in inside["prompt_version"].unique()),
        "calls": len(inside),
        "mean_output_tokens": float(inside["output_tokens"].mean()),
        "cost_per_call": float(inside["cost"].mean()),
    }


def _alarm(week: Week, result: MonitorResultRow) -> dict[str, Any]:
    """The output monitor's breach: what alarmed, and the means it compared."""
    descriptors = result.details.get("descriptors") or {}
    return {
        "week": week.number,
        "monitor_result_id": result.id,
        "summary": result.summary,
        "alarmed": list(result.details.get("alarmed_descriptors") or []),
        "means": {
            name: [descriptors[name].get("reference"), descriptors[name].get("current")]
            for name in ("output_tokens", "output_words", "cost", "latency_ms")
            if name in descriptors
        },
    }


def _gate_figures(outcome: GateOutcome) -> dict[str, Any]:
    decision = outcome.decision
    return {
        "id": outcome.run.id,
        "version": outcome.run.version,
        "baseline_version": outcome.run.baseline_version,
        "decision": outcome.run.decision,
        "exit_code": 0 if decision.passed else 1,
        "cases": len(outcome.candidate.cases),
        "candidate_pass_rate": decision.candidate_pass_rate,
        "baseline_pass_rate": decision.baseline_pass_rate,
        "critical_failures": list(decision.critical_failures),
        "reasons": list(decision.reasons),
        "eval_set_sha256": outcome.run.eval_set_sha256,
        "mean_words": _mean_words(outcome.candidate),
    }


def _mean_words(result: EvalResult) -> float:
    """Mean words of a run's answers, counted from the stored outputs."""
    return fmean(len((case.output or "").split()) for case in result.cases)


def _verdict(outcome: GateOutcome) -> str:
    """The gate's decision in one clause: cases passed on each side, and why it failed."""
    decision, candidate, baseline = outcome.decision, outcome.candidate, outcome.baseline
    text = (
        f"gate {'passed' if decision.passed else 'failed'}: {candidate.n_passed} of "
        f"{len(candidate.cases)} cases"
    )
    if baseline is None:
        text += " (no baseline yet)"
    else:
        text += (
            f", v{outcome.run.baseline_version} {baseline.n_passed} of {len(baseline.cases)}; "
            f"{decision.worse} worse, {decision.better} better"
        )
    if decision.reasons:
        text += ": " + "; ".join(decision.reasons)
    return text


def _prompt_file(model: str, system_message: str) -> str:
    spec = {
        "description": "Answer a customer's support question.",
        "provider": "fake",
        "model": model,
        "parameters": {"temperature": 0.2},
        "variables": ["question"],
        "messages": [
            {"role": "system", "content": system_message},
            {"role": "user", "content": "{{ question }}"},
        ],
    }
    return _HEADER + yaml.safe_dump(spec, sort_keys=False, width=100)


def _eval_file() -> str:
    eval_set = {
        "description": "What the assistant must do before its prompt takes production.",
        "default": {
            "assert": [
                {"type": "not-icontains", "value": "as an AI"},
                {"type": "word-count", "value": {"max": LOOSE_WORDS}},
            ]
        },
        "cases": [
            {
                "id": word,
                "vars": {"question": question},
                "assert": [{"type": "icontains", "value": word}],
            }
            for question, word in _EVAL_QUESTIONS
        ],
        "gate": {"assertions": {"word-count": 0.9}},
    }
    return _HEADER + yaml.safe_dump(eval_set, sort_keys=False, width=100)


def _week_table(weeks: list[AssistantWeek]) -> Table:
    table = Table(title="the assistant, week by week", title_justify="left")
    for name in ("week", "served by", "calls", "output tokens", "cost a call", "over threshold"):
        table.add_column(name, justify="right")
    for name in ("outputs", "cost SLO (7d burn)", "alerts / actions"):
        table.add_column(name, justify="left")
    for week in weeks:
        burn = f" ({week.cost_burn_7d:.1f}x)" if week.cost_burn_7d is not None else ""
        table.add_row(
            str(week.week),
            f"v{week.served_by}",
            str(week.calls),
            f"{week.mean_output_tokens:.1f}",
            f"${week.cost_per_call:.5f}",
            str(week.over_threshold),
            week.outputs or "-",
            f"{week.cost_slo or '-'}{burn}",
            ", ".join(
                week.alerts_fired + week.actions + [f"resolved {r}" for r in week.alerts_resolved]
            ),
        )
    return table
