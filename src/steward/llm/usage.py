"""What LLM calls cost and how they went: totals by day, prompt version or model, from the event log.

>>> import pyarrow as pa
>>> from datetime import datetime, UTC
>>> calls = pa.table({"event_time": [datetime(2026, 12, 1, tzinfo=UTC)] * 2,
...     "prompt": ["a", "a"], "prompt_version": [1, 1], "request_model": ["m", "m"],
...     "response_model": [None, None], "input_tokens": [10, 20], "output_tokens": [5, 5],
...     "cost": [0.5, None], "priced": [True, False], "latency_ms": [100.0, 300.0],
...     "error": [None, "timeout"]})
>>> [row] = summarize(calls)
>>> [row.calls, row.cost, row.unpriced, row.errors, row.cost_per_call] == [2, 0.5, 1, 1, 0.5]
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

__all__ = ["GROUPINGS", "UsageRow", "summarize"]

Grouping = Literal["day", "prompt", "model", "all"]
GROUPINGS: tuple[Grouping, ...] = ("day", "prompt", "model", "all")


@dataclass(frozen=True)
class UsageRow:
    """Calls of one group: counts, tokens, cost (priced calls only) and latency."""

    group: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float
    unpriced: int
    errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None

    @property
    def cost_per_call(self) -> float | None:
        """Over the priced calls; None when none was priced."""
        priced = self.calls - self.unpriced
        return self.cost / priced if priced else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cost_per_call": self.cost_per_call}


def summarize(calls: pa.Table, by: Grouping = "all") -> list[UsageRow]:
    """One row per group, in group order; an unpriced call adds to ``unpriced``, never to cost."""
    frame = calls.to_pandas()
    if frame.empty:
        return []
    keys = _keys(frame, by)
    rows = []
    for group, part in frame.groupby(keys, sort=True):
        latency = part["latency_ms"].dropna().to_numpy(dtype=float)
        rows.append(
            UsageRow(
                group=str(group),
                calls=len(part),
                input_tokens=int(part["input_tokens"].fillna(0).sum()),
                output_tokens=int(part["output_tokens"].fillna(0).sum()),
                cost=float(part.loc[part["priced"].fillna(False).astype(bool), "cost"].sum()),
                unpriced=int((~part["priced"].fillna(False).astype(bool)).sum()),
                errors=int(part["error"].notna().sum()),
                latency_p50_ms=float(np.percentile(latency, 50)) if len(latency) else None,
                latency_p95_ms=float(np.percentile(latency, 95)) if len(latency) else None,
            )
        )
    return rows


def _keys(frame: Any, by: Grouping) -> Any:
    if by == "day":
        return frame["event_time"].dt.strftime("%Y-%m-%d")
    if by == "prompt":
        version = frame["prompt_version"].map(
            lambda v: "" if v != v or v is None else f" v{int(v)}"
        )
        return frame["prompt"].fillna("(no prompt)") + version
    if by == "model":
        return frame["response_model"].fillna(frame["request_model"])
    return frame["event_time"].map(lambda _: "all")
