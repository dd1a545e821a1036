"""What a demo run leaves: the figures of each simulated week and the told run itself.

``steward.demo.story`` fills them in; ``steward.demo.narration`` and ``steward.demo.finale`` read
and add to them, so they live here, below all three.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steward.client import Client
from steward.core import Steward
from steward.data.events import EventLog
from steward.demo.config import SYSTEM
from steward.demo.simulation import InProcessServer

__all__ = ["APPROVER", "APPROVER_ID", "SYSTEM", "DemoRun", "WeekFigures"]

APPROVER = "Dana Ortiz (head of retention)"  # the one person in the story
APPROVER_ID = "dana.ortiz"  # her identity on the server


@dataclass
class WeekFigures:
    """What one simulated week did, for the closing table and ``demo-summary.json``."""

    week: int
    start: str
    end: str
    customers: int = 0
    new_product: int = 0
    contacted: int = 0
    held_out: int = 0
    flagged: int = 0
    champion: int | None = None
    shadow_scored: int = 0
    drift: str = ""
    data_quality: str = ""
    realized_auc: float | None = None
    realized_auc_low: float | None = None
    realized_auc_high: float | None = None
    labeled_week: int | None = None
    alerts_fired: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


@dataclass
class DemoRun:
    """A told story: the open workspace, its event log, and the server still answering at ``url``."""

    steward: Steward
    events: EventLog
    server: InProcessServer
    client: Client
    weeks: list[WeekFigures]
    summary: dict[str, Any]

    @property
    def url(self) -> str:
        return self.server.url

    def serve_forever(self) -> None:
        """Keep serving in the foreground until Ctrl-C, then close."""
        try:
            self.server.wait()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the server and close the log and the store."""
        self.client.close()
        self.server.stop()
        self.events.close()
        self.steward.close()
