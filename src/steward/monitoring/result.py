"""``MonitorResult``: one monitor's verdict over one window, and the thresholds monitors share."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final

import pandas as pd

__all__ = ["AUC_TOLERANCE", "MIN_ROWS", "MonitorResult", "not_enough_data"]

#: Fewer rows than this in a window and a monitor says "not enough data" instead of judging.
MIN_ROWS: Final = 100
#: How far below the registered ROC AUC a window's whole interval must lie to breach: a material
#: drop, as drift's practical floor. Live outcomes of a model that acts are partly its own doing (a
#: contacted churner who stays is labeled 0), so live AUC sits somewhat below the offline figure.
AUC_TOLERANCE: Final = 0.05


@dataclass(frozen=True)
class MonitorResult:
    """One monitor's verdict over one window; ``status`` is ok, breach or not_enough_data."""

    system: str
    monitor: str
    window_start: datetime
    window_end: datetime
    status: str  # ok | breach | not_enough_data
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def breach(self) -> bool:
        return self.status == "breach"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["window_start"] = self.window_start.isoformat()
        data["window_end"] = self.window_end.isoformat()
        return data

    def to_frame(self) -> pd.DataFrame:
        """The result's rows as pandas: one per column and method (drift, quality), per metric
        (performance), per descriptor (LLM outputs); else one row of the result itself."""
        for key in ("results", "metrics", "columns", "descriptors"):
            rows = self.details.get(key)
            if isinstance(rows, list) and rows and all(isinstance(row, dict) for row in rows):
                return pd.DataFrame(rows)
        return pd.DataFrame([{k: v for k, v in self.to_dict().items() if k != "details"}])

    def _repr_html_(self) -> str:
        """How a notebook shows it: the verdict, then its rows (no scripts, nothing fetched)."""
        colour = {"breach": "#c62828", "ok": "#2e7d32"}.get(self.status, "#b26a00")
        head = (
            f"<p><b>{html.escape(self.system)}</b> · {html.escape(self.monitor)} · "
            f"{self.window_start:%Y-%m-%d %H:%M} to {self.window_end:%Y-%m-%d %H:%M} UTC · "
            f'<span style="color:{colour}">{html.escape(self.status)}</span><br>'
            f"{html.escape(self.summary)}</p>"
        )
        return head + self.to_frame().to_html(index=False, max_rows=50, border=0)


def not_enough_data(
    system: str, monitor: str, start: datetime, end: datetime, summary: str
) -> MonitorResult:
    """A result that says why the monitor could not judge the window (too few rows, no reference)."""
    return MonitorResult(system, monitor, start, end, "not_enough_data", summary)
