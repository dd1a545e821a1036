"""``Steward``: the one object the CLI, the server and the tests build, the same way.

A thin façade over :class:`~steward.workspace.Workspace` (settings, stores, event log, registry
operations) that adds the operations that reach above the workspace layer, such as model cards.

>>> import tempfile
>>> steward = Steward.open(tempfile.mkdtemp())
>>> _ = steward.init()
>>> [change.kind for change in steward.apply()]
['created']
>>> steward.close()
"""

from __future__ import annotations

from pathlib import Path

from steward.governance import cards
from steward.store import audit
from steward.workspace import Workspace

__all__ = ["Steward"]


class Steward(Workspace):
    """The workspace and every operation a user calls on it."""

    def card(
        self, system: str, version: int | str = "champion", card_file: Path | None = None
    ) -> cards.ModelCard:
        return cards.build_card(
            self.system(system), self.version(system, version), self.history(system), card_file
        )

    def verify_audit(self) -> audit.AuditCheck:
        return audit.verify(self.store)
