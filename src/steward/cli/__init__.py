"""The ``steward`` command: a thin shell over the library.

``steward.cli.main`` holds the root group ``cli`` and the helpers the command groups share; each
command group lives in its own module and is registered through the ``steward_cli_commands`` hook
(``steward.cli.commands`` lists the built-ins), so a plugin's commands attach the same way.
"""

from steward.cli.main import cli, main

__all__ = ["cli", "main"]
