"""Champion against challenger: a paired DeLong test of ROC AUC, promotion, and approvals.

``compare_models`` scores the ``challenger`` and the ``champion`` on the same labeled rows from two
sources and tests the difference of their ROC AUCs with DeLong, DeLong & Clarke-Pearson's (1988)
paired test:

- the **golden set** (``retrain.golden_set`` in ``steward.yaml``, CSV or Parquet with the target
  column), scored by both models now;
- **shadow traffic**: ``shadow`` events of the challenger joined, by prediction id, with the
  champion's logged predictions and their outcomes over ``retrain.window``.

The challenger is better when at least one source has enough data (``MIN_SAMPLES`` labeled rows,
``MIN_PER_CLASS`` of each class) and, on every source that has, its AUC exceeds the champion's by at
least ``retrain.min_margin`` and the one-sided p-value is below ``ALPHA``.

On a ``high`` risk-tier system a promotion waits for a person: ``request_promotion`` opens an
approval, ``approve`` moves ``champion`` (in the same transaction that closes the approval) and
``reject`` closes it. A decision is final; deciding twice is a ``ConflictError``.

>>> test = paired_delong([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], [0.1, 0.2, 0.7, 0.8])
>>> round(test.auc_a, 2), round(test.auc_b, 2), round(test.difference, 2)
(0.75, 1.0, 0.25)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from sqlalchemy import select

from steward.data.events import EventLog
from steward.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from steward.llm import prompts
from steward.model import registry
from steward.model.lineage import read_table
from steward.model.registry import ModelVersion
from steward.monitoring.metrics import MIN_PER_CLASS, MIN_SAMPLES, auc_placements, join_outcomes
from steward.store import (
    MAX_ROW_ID,
    ActionRow,
    AliasRow,
    ApprovalRow,
    PromptLabelRow,
    System,
    audit,
    utcnow,
)
from steward.workspace import Workspace

__all__ = [
    "ALPHA",
    "APPROVAL_STATES",
    "DEFAULT_MARGIN",
    "DEFAULT_WINDOW",
    "Approval",
    "Comparison",
    "PairedAUC",
    "SourceComparison",
    "approve",
    "binary_labels",
    "compare_models",
    "find_pending",
    "json_safe",
    "list_approvals",
    "paired_delong",
    "promote",
    "read_golden_set",
    "reject",
    "request_promotion",
]

FloatArray = npt.NDArray[np.float64]

ALPHA: Final = 0.05
DEFAULT_MARGIN: Final = 0.01  # RetrainConfig.min_margin's default, for systems without retrain:
DEFAULT_WINDOW: Final = timedelta(days=28)  # RetrainConfig.window's default
APPROVAL_STATES: Final = ("pending", "approved", "rejected")
_TRUE: Final = frozenset({"1", "1.0", "true", "yes", "y", "t"})
_FALSE: Final = frozenset({"0", "0.0", "false", "no", "n", "f"})


# ---------------------------------------------------------------------------------------------
# The paired DeLong test


@dataclass(frozen=True)
class PairedAUC:
    """Two ROC AUCs on the same rows and DeLong's test of ``auc_b - auc_a`` (H1: b is better)."""

    n_positive: int
    n_negative: int
    auc_a: float
    auc_b: float
    variance_a: float
    variance_b: float
    covariance: float
    difference: float
    variance_of_difference: float
    z: float | None  # None when the difference has no variance (e.g. identical scores)
    p_value: float  # one-sided: P(a difference this large | the two AUCs are equal)

    @property
    def standard_error(self) -> float:
        return float(np.sqrt(max(self.variance_of_difference, 0.0)))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "standard_error": self.standard_error}


def paired_delong(
    labels: npt.ArrayLike, scores_a: npt.ArrayLike, scores_b: npt.ArrayLike
) -> PairedAUC:
    """DeLong, DeLong & Clarke-Pearson's (1988) paired test of two correlated ROC AUCs.

    Each model's AUC is the mean of its structural components (placement values, computed with
    midranks as in Sun & Xu 2014, so ties count one half); the 2x2 covariance of the two AUCs is
    ``S10 / m + S01 / n`` from the components over the ``m`` positives and ``n`` negatives. The
    p-value is one-sided, for ``auc_b > auc_a``.

    >>> test = paired_delong([0, 1, 0, 1, 1, 0], [0.2, 0.6, 0.5, 0.7, 0.4, 0.1],
    ...                      [0.2, 0.6, 0.5, 0.7, 0.4, 0.1])
    >>> test.difference, test.variance_of_difference, test.p_value
    (0.0, 0.0, 1.0)
    """
    y = np.asarray(labels, dtype=np.float64)
    a, b = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    if not (y.ndim == a.ndim == b.ndim == 1) or not (len(y) == len(a) == len(b)):
        raise InvalidInputError(
            f"labels and both score arrays must be 1-D and of one length; got {len(y)} labels, "
            f"{len(a)} and {len(b)} scores"
        )
    if not np.isin(y, (0.0, 1.0)).all():
        raise InvalidInputError("labels must be 0 or 1 for a ROC AUC comparison")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InvalidInputError("scores must be finite numbers; drop rows without a score first")
    positive = y == 1.0
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        raise InvalidInputError(
            f"a ROC AUC needs both classes; got {m} positives and {n} negatives"
        )
    aucs, v10, v01 = [], [], []
    for scores in (a, b):
        auc, positive_placements, negative_placements = auc_placements(
            scores[positive], scores[~positive]
        )
        aucs.append(auc)
        v10.append(positive_placements)
        v01.append(negative_placements)
    covariance = _covariance(np.vstack(v10)) / m + _covariance(np.vstack(v01)) / n
    variance_of_difference = float(covariance[0, 0] + covariance[1, 1] - 2.0 * covariance[0, 1])
    difference = aucs[1] - aucs[0]
    z, p_value = _one_sided(difference, variance_of_difference)
    return PairedAUC(
        n_positive=m,
        n_negative=n,
        auc_a=aucs[0],
        auc_b=aucs[1],
        variance_a=float(covariance[0, 0]),
        variance_b=float(covariance[1, 1]),
        covariance=float(covariance[0, 1]),
        difference=difference,
        variance_of_difference=max(variance_of_difference, 0.0),
        z=z,
        p_value=p_value,
    )


def _covariance(components: FloatArray) -> FloatArray:
    if components.shape[1] < 2:
        return np.zeros((2, 2))
    return np.atleast_2d(np.cov(components, ddof=1))


def _one_sided(difference: float, variance: float) -> tuple[float | None, float]:
    # Two AUCs computed from the same placements differ by rounding only; treat that as zero.
    if variance <= 1e-15:
        return None, (0.0 if difference > 1e-12 else 1.0)
    z = difference / float(np.sqrt(variance))
    return float(z), float(stats.norm.sf(z))


# ---------------------------------------------------------------------------------------------
# Comparing two versions of a system


@dataclass(frozen=True)
class SourceComparison:
    """The comparison on one source of labeled rows (``golden`` or ``shadow``)."""

    source: str
    n: int
    n_positive: int
    n_negative: int
    enough_data: bool
    better: bool
    note: str  # why the source did not count, or the figures in a sentence
    test: PairedAUC | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {key: value for key, value in asdict(self).items() if key != "test"}
        data["test"] = None if self.test is None else self.test.to_dict()
        return data


@dataclass(frozen=True)
class Comparison:
    """Challenger against champion on every source; ``better`` is the promotion rule's answer."""

    system: str
    challenger: int
    champion: int
    min_margin: float
    alpha: float
    sources: tuple[SourceComparison, ...] = field(default_factory=tuple)

    @property
    def counted(self) -> list[SourceComparison]:
        return [source for source in self.sources if source.enough_data]

    @property
    def better(self) -> bool:
        counted = self.counted
        return bool(counted) and all(source.better for source in counted)

    def summary(self) -> str:
        """One sentence with the figures, e.g. for an action's reason or an approval."""
        verdict = "better" if self.better else "not better"
        if not self.counted:
            verdict = "not shown better (no source has enough labeled data)"
        parts = "; ".join(f"{source.source}: {source.note}" for source in self.sources)
        return (
            f"challenger v{self.challenger} is {verdict} than champion v{self.champion} "
            f"(needs ROC AUC +{self.min_margin:g} and one-sided p < {self.alpha:g}): {parts}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "challenger": self.challenger,
            "champion": self.champion,
            "min_margin": self.min_margin,
            "alpha": self.alpha,
            "better": self.better,
            "summary": self.summary(),
            "sources": [source.to_dict() for source in self.sources],
        }


def compare_models(
    steward: Workspace,
    events: EventLog,
    system: str,
    challenger: int | str = "challenger",
    champion: int | str = "champion",
    *,
    at: datetime | None = None,
) -> Comparison:
    """Compare two versions of a binary system on its golden set and on shadow traffic.

    >>> comparison = compare_models(steward, events, "churn")  # doctest: +SKIP
    >>> comparison.better, comparison.summary()                # doctest: +SKIP
    """
    info = steward.system(system)
    if info.task != "binary":
        raise InvalidInputError(
            f"system {system!r} is a {info.task} system; comparing versions is implemented for "
            "binary systems (ROC AUC) only, so compare this one by hand"
        )
    retrain = info.declared.retrain
    challenger_version = steward.version(system, challenger)
    champion_version = steward.version(system, champion)
    if challenger_version.version == champion_version.version:
        raise InvalidInputError(
            f"challenger {challenger!r} and champion {champion!r} of {system!r} are both "
            f"v{champion_version.version}; point the challenger at another version first"
        )
    margin = retrain.min_margin if retrain else DEFAULT_MARGIN
    window = _window(retrain.window if retrain else None)
    end = at or utcnow()
    sources = (
        _golden_source(
            steward, system, info.target, retrain.golden_set if retrain else None,
            challenger_version, champion_version, margin,
        ),
        _shadow_source(
            events, system, end - window, end, challenger_version, champion_version, margin
        ),
    )  # fmt: skip
    return Comparison(
        system=system,
        challenger=challenger_version.version,
        champion=champion_version.version,
        min_margin=margin,
        alpha=ALPHA,
        sources=sources,
    )


def _window(text: str | None) -> timedelta:
    if text is None:
        return DEFAULT_WINDOW
    from steward._util.times import parse_window

    return parse_window(text)


def read_golden_set(
    steward: Workspace, golden_set: str, target: str
) -> tuple[pd.DataFrame, FloatArray]:
    """The golden set's feature columns and its 0/1 labels (``target`` column), path as declared."""
    path = Path(golden_set)
    if not path.is_absolute():
        path = steward.settings.workspace / path
    frame = read_table(path)
    if not target or target not in frame.columns:
        raise InvalidInputError(
            f"golden set {str(path)!r} has no target column {target!r} (columns: "
            f"{', '.join(map(str, frame.columns[:10]))}); add the true labels under the system's "
            "target name"
        )
    labels = binary_labels(frame[target], f"golden set {str(path)!r} column {target!r}")
    return frame.drop(columns=[target]), labels


def binary_labels(values: pd.Series, where: str) -> FloatArray:
    """0/1 labels from numbers, booleans or yes/no-style text; anything else is an error."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        labels = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    else:
        text = values.astype("string").str.strip().str.lower()
        labels = np.where(text.isin(_TRUE), 1.0, np.where(text.isin(_FALSE), 0.0, np.nan))
    bad = ~np.isin(labels, (0.0, 1.0))
    if bad.any():
        first = values[bad].tolist()[0]
        raise InvalidInputError(
            f"{where}: value {first!r} (and {int(bad.sum()) - 1} more) is not a binary label; "
            "use 0/1, true/false or yes/no"
        )
    return np.asarray(labels, dtype=np.float64)


def _golden_source(
    steward: Workspace,
    system: str,
    target: str,
    golden_set: str | None,
    challenger: ModelVersion,
    champion: ModelVersion,
    margin: float,
) -> SourceComparison:
    if not golden_set:
        return SourceComparison(
            "golden",
            0,
            0,
            0,
            False,
            False,
            "no golden set (set retrain.golden_set in steward.yaml)",
        )
    features, labels = read_golden_set(steward, golden_set, target)
    scores = [
        np.asarray(steward.load_model(system, version.version).predict(features, "binary"), float)
        for version in (champion, challenger)
    ]
    return _judge("golden", labels, scores[0], scores[1], margin)


def _shadow_source(
    events: EventLog,
    system: str,
    start: datetime,
    end: datetime,
    challenger: ModelVersion,
    champion: ModelVersion,
    margin: float,
) -> SourceComparison:
    shadows = events.scan("shadow", system, start=start, end=end).to_pandas()
    shadows = shadows[shadows["model_version"] == challenger.version]
    predictions = events.scan("prediction", system, start=start, end=end).to_pandas()
    predictions = predictions[predictions["model_version"] == champion.version]
    paired = predictions.merge(
        shadows[["id", "score"]].rename(columns={"score": "challenger_score"}), on="id"
    )
    span = f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
    if paired.empty:
        return SourceComparison(
            "shadow", 0, 0, 0, False, False,
            f"no shadow scores of v{challenger.version} on v{champion.version}'s predictions "
            f"from {span}",
        )  # fmt: skip
    outcomes = events.scan("outcome", system, start=start).to_pandas()
    if outcomes.empty:
        labeled = paired.iloc[0:0].assign(outcome_value=np.nan)
    else:
        joined = join_outcomes(paired, outcomes, by="each")
        labeled = joined[joined["labeled"]]
    labeled = labeled[labeled["score"].notna() & labeled["challenger_score"].notna()]
    if labeled.empty:
        return SourceComparison(
            "shadow", 0, 0, 0, False, False,
            f"{len(paired)} shadowed predictions from {span}, none with an outcome yet",
        )  # fmt: skip
    labels = binary_labels(labeled["outcome_value"], f"outcomes of {system!r}")
    return _judge(
        "shadow",
        labels,
        labeled["score"].to_numpy(dtype=np.float64),
        labeled["challenger_score"].to_numpy(dtype=np.float64),
        margin,
    )


def _judge(
    source: str, labels: FloatArray, champion: FloatArray, challenger: FloatArray, margin: float
) -> SourceComparison:
    n, m = len(labels), int(labels.sum())
    counts = (n, m, n - m)
    if n < MIN_SAMPLES or min(m, n - m) < MIN_PER_CLASS:
        return SourceComparison(
            source, *counts, False, False,
            f"not enough data ({n} labeled rows, {m} positive; needs {MIN_SAMPLES} rows and "
            f"{MIN_PER_CLASS} of each class)",
        )  # fmt: skip
    test = paired_delong(labels, champion, challenger)
    better = test.difference >= margin and test.p_value < ALPHA
    note = (
        f"ROC AUC {test.auc_b:.3f} vs {test.auc_a:.3f} ({test.difference:+.3f}, "
        f"p {_p_text(test.p_value)}, n={n})"
    )
    return SourceComparison(source, *counts, True, better, note, test)


def _p_text(p_value: float) -> str:
    return "< 0.001" if p_value < 0.001 else f"= {p_value:.3f}"


# ---------------------------------------------------------------------------------------------
# Promotion and approvals


@dataclass(frozen=True)
class Approval:
    """A promotion waiting for (or decided by) a person."""

    id: int
    system: str
    kind: str
    subject: dict[str, Any]
    state: str
    reason: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["requested_at"] = self.requested_at.isoformat()
        data["decided_at"] = self.decided_at.isoformat() if self.decided_at else None
        return data


def promote(
    steward: Workspace, comparison: Comparison, *, actor: str, reason: str = ""
) -> registry.AliasChange:
    """Move ``champion`` to the compared challenger, with the figures as the reason."""
    return registry.move_alias(
        steward.store,
        comparison.system,
        "champion",
        comparison.challenger,
        actor=actor,
        reason=reason or comparison.summary(),
    )


def _subject(comparison: Comparison, alert_id: int | None) -> dict[str, Any]:
    return json_safe(
        {
            "challenger": comparison.challenger,
            "champion": comparison.champion,
            "figures": comparison.to_dict(),
            "alert_id": alert_id,
        }
    )


def find_pending(steward: Workspace, comparison: Comparison) -> Approval | None:
    """An approval already waiting to promote this challenger over this champion, if any."""
    for approval in list_approvals(steward, comparison.system, "pending"):
        subject = approval.subject
        if (subject.get("challenger"), subject.get("champion")) == (
            comparison.challenger,
            comparison.champion,
        ):
            return approval
    return None


def request_promotion(
    steward: Workspace, comparison: Comparison, *, actor: str, alert_id: int | None = None
) -> Approval:
    """Open an approval to promote the comparison's challenger (audited as ``approval.request``)."""
    with steward.store.write() as session:
        system_row = registry.find_system(session, comparison.system)
        row = ApprovalRow(
            system_id=system_row.id,
            kind="promote",
            subject=_subject(comparison, alert_id),
            state="pending",
            reason=comparison.summary(),
            requested_by=actor,
            requested_at=utcnow(),
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="approval.request",
            target=f"{comparison.system}/approval/{row.id}",
            details={"challenger": comparison.challenger, "champion": comparison.champion},
            bind=row,
        )
        return _approval(system_row.name, row)


def list_approvals(
    steward: Workspace, system: str | None = None, state: str | None = "pending"
) -> list[Approval]:
    """Approvals, newest first; ``state`` ``None`` or ``"all"`` lists every state."""
    if state not in (None, "all", *APPROVAL_STATES):
        raise InvalidInputError(
            f"approval state {state!r} is not one of {', '.join(APPROVAL_STATES)} or all"
        )
    with steward.store.read() as session:
        query = select(ApprovalRow, System.name).join(System, System.id == ApprovalRow.system_id)
        if system is not None:
            query = query.where(ApprovalRow.system_id == registry.find_system(session, system).id)
        if state not in (None, "all"):
            query = query.where(ApprovalRow.state == state)
        rows = session.execute(query.order_by(ApprovalRow.id.desc())).all()
        return [_approval(name, row) for row, name in rows]


def approve(steward: Workspace, approval_id: int, actor: str, note: str = "") -> Approval:
    """Approve a pending promotion: move ``champion``, close the approval, record the action.

    All three happen in one transaction, so a promotion is never half-approved. On a high-risk
    system, or one whose champion is protected, the approver must not be who requested it (four
    eyes): ``ForbiddenError``.
    """
    with steward.store.write() as session:
        row, system_row = _pending(steward, session, approval_id)
        if row.kind == "prompt-label":
            _approve_label(session, row, system_row, actor, note)
            return _approval(system_row.name, row)
        guarded = system_row.risk_tier == "high" or registry.is_protected(system_row, "champion")
        if guarded and actor == row.requested_by:
            raise ForbiddenError(
                f"approval #{approval_id} on {system_row.name!r} (high-risk, or its champion "
                f"protected) was requested by {actor}; another approver must decide it (four eyes)"
            )
        champion = session.get(AliasRow, (system_row.id, "champion"))
        expected = row.subject.get("champion")
        if champion is None or champion.version != expected:
            now = "no version" if champion is None else f"v{champion.version}"
            raise ConflictError(
                f"approval #{approval_id}: champion of {system_row.name!r} is now {now}, not the "
                f"v{expected} it was compared with; reject it and compare again "
                f"(`steward promote {system_row.name} --if-better`)"
            )
        target = int(row.subject["challenger"])
        reason = f"approved by {actor} (approval #{approval_id})" + (f": {note}" if note else "")
        registry.apply_move(session, system_row, "champion", target, "move", actor, reason)
        _decide(session, row, "approved", actor, note)
        session.add(
            ActionRow(
                system_id=system_row.id,
                alert_id=row.subject.get("alert_id"),
                kind="promote",
                status="done",
                reason=f"champion moved from v{expected} to v{target}, {reason}",
                details={"approval_id": approval_id, "from": expected, "to": target},
                actor=actor,
                created_at=utcnow(),
            )
        )
        _audit_decision(session, system_row.name, row, actor, note)
        return _approval(system_row.name, row)


def _approve_label(
    session: Any, row: ApprovalRow, system_row: System, actor: str, note: str
) -> None:
    """Approve a protected prompt label's move: four eyes always, and only from where it was."""
    subject = row.subject
    if actor == row.requested_by:
        raise ForbiddenError(
            f"approval #{row.id} (move the protected label {subject['label']!r} of prompt "
            f"{subject['prompt']!r}) was requested by {actor}; another approver must decide it"
        )
    held = session.get(PromptLabelRow, (system_row.id, subject["prompt"], subject["label"]))
    now = held.version if held is not None else None
    if now != subject.get("from"):
        raise ConflictError(
            f"approval #{row.id}: label {subject['label']!r} of prompt {subject['prompt']!r} now "
            f"points at {_version_text(now)}, not the {_version_text(subject.get('from'))} it "
            "was requested from; reject it and request the move again"
        )
    reason = f"approved by {actor} (approval #{row.id})" + (f": {note}" if note else "")
    prompts.apply_label_move(
        session,
        system_row,
        subject["prompt"],
        subject["label"],
        int(subject["to"]),
        "move",
        actor,
        reason,
        subject.get("eval_run_id"),
    )
    _decide(session, row, "approved", actor, note)
    _audit_decision(session, system_row.name, row, actor, note)


def _version_text(version: int | None) -> str:
    return "no version" if version is None else f"v{version}"


def reject(steward: Workspace, approval_id: int, actor: str, note: str = "") -> Approval:
    """Reject a pending promotion: champion stays; the approval and an action record why."""
    with steward.store.write() as session:
        row, system_row = _pending(steward, session, approval_id)
        _decide(session, row, "rejected", actor, note)
        if row.kind == "prompt-label":  # the label stays; the approval and the audit say why
            _audit_decision(session, system_row.name, row, actor, note)
            return _approval(system_row.name, row)
        session.add(
            ActionRow(
                system_id=system_row.id,
                alert_id=row.subject.get("alert_id"),
                kind="promote",
                status="skipped",
                reason=(
                    f"promotion of v{row.subject.get('challenger')} rejected by {actor} "
                    f"(approval #{approval_id})" + (f": {note}" if note else "")
                ),
                details={"approval_id": approval_id},
                actor=actor,
                created_at=utcnow(),
            )
        )
        _audit_decision(session, system_row.name, row, actor, note)
        return _approval(system_row.name, row)


def _pending(steward: Workspace, session: Any, approval_id: int) -> tuple[ApprovalRow, System]:
    row = None
    if 1 <= approval_id <= MAX_ROW_ID:
        row = session.scalars(
            select(ApprovalRow).where(ApprovalRow.id == approval_id).with_for_update()
        ).first()
    if row is None:
        raise NotFoundError(
            f"there is no approval #{approval_id}; see `steward approvals list --state all`"
        )
    system_row = session.get(System, row.system_id)
    steward.store.lock_system(session, system_row.id)
    if row.state != "pending":
        raise ConflictError(
            f"approval #{approval_id} was already {row.state} by {row.decided_by} at "
            f"{row.decided_at:%Y-%m-%d %H:%M} UTC; a decision is final"
        )
    return row, system_row


def _decide(session: Any, row: ApprovalRow, state: str, actor: str, note: str) -> None:
    row.state, row.decided_by, row.decided_at, row.decision_note = state, actor, utcnow(), note
    session.flush()


def _audit_decision(session: Any, system: str, row: ApprovalRow, actor: str, note: str) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"approval.{'approve' if row.state == 'approved' else 'reject'}",
        target=f"{system}/approval/{row.id}",
        details=(
            {**row.subject, "note": note}
            if row.kind == "prompt-label"
            else {
                "challenger": row.subject.get("challenger"),
                "champion": row.subject.get("champion"),
                "note": note,
            }
        ),
        bind=row,
    )


def _approval(system: str, row: ApprovalRow) -> Approval:
    return Approval(
        id=row.id,
        system=system,
        kind=row.kind,
        subject=dict(row.subject),
        state=row.state,
        reason=row.reason,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_note=row.decision_note,
    )


def json_safe(value: Any) -> Any:
    """JSON-ready copy: numpy scalars to Python, non-finite floats (PostgreSQL rejects them) to None."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
