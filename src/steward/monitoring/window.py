"""``MonitorWindow``: one system over one window, what the monitors of one run share.

Each part (the window's predictions, their decoded inputs, the profile context) is read once, on
first use, by whichever monitor needs it first; the drift monitor leaves its report for the
performance monitors' "why".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

import pandas as pd

from steward.data.drift import DriftReport
from steward.data.events import EventLog
from steward.data.events.schemas import ATTRIBUTES_KEY
from steward.monitoring.profiles import ProfileContext, profile_context
from steward.workspace import Workspace
from steward.workspace.systems import SystemInfo

__all__ = ["MonitorWindow"]


@dataclass
class MonitorWindow:
    """The window ``[start, end)`` of one system, as the monitors of one run see it."""

    workspace: Workspace
    events: EventLog
    info: SystemInfo
    start: datetime
    end: datetime
    #: The champion's reference sample, whole (with target) and as model inputs only.
    full_reference: pd.DataFrame | None
    reference: pd.DataFrame | None
    exact: bool = False
    settle: timedelta = timedelta(seconds=30)
    #: Left by the drift monitor for the performance monitors.
    drift_report: DriftReport | None = field(default=None)

    @property
    def system(self) -> str:
        return self.info.name

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @cached_property
    def predictions(self) -> pd.DataFrame:
        """The window's prediction events, read once."""
        return self.events.scan(
            "prediction", self.system, start=self.start, end=self.end
        ).to_pandas()

    @cached_property
    def inputs(self) -> pd.DataFrame:
        """The window's model inputs, one row per prediction (exact mode)."""
        if self.predictions.empty:
            return pd.DataFrame()
        decoded = [
            json.loads(text) if isinstance(text, str) else {} for text in self.predictions["inputs"]
        ]
        frame = pd.DataFrame.from_records(decoded, index=self.predictions.index)
        return frame.drop(columns=[ATTRIBUTES_KEY], errors="ignore")  # beside the record, not in it

    @cached_property
    def profiles(self) -> ProfileContext:
        """The system's stored hourly profiles, brought up to date once (profile mode)."""
        return profile_context(
            self.workspace, self.events, self.system, self.reference, settle=self.settle
        )
