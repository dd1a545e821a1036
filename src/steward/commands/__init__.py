"""Command groups of ``steward`` that live beside ``steward.cli``, one module per noun.

Each module imports ``steward.cli`` and attaches its commands to the ``cli`` group; ``steward.cli``
imports this package at its end so that every command is registered before ``main`` runs.
"""

from __future__ import annotations

from steward.commands import (
    alerts,  # noqa: F401
    playbooks,  # noqa: F401
    report,  # noqa: F401
    review,  # noqa: F401
)
