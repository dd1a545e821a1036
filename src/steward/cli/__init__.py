"""The ``steward`` command: a thin shell over the library.

``main`` is the group; each command group lives in its own module and attaches itself to it.
"""

from steward.cli import alerts, playbooks, report, review
from steward.cli.main import cli, main

__all__ = ["alerts", "cli", "main", "playbooks", "report", "review"]
