"""Plugins: every kind Steward has several of is registered through a pluggy hook, built-ins too.

A plugin is a module or object with functions marked ``@hookimpl`` whose names match the hook
specifications below. Steward registers its own built-ins (``DEFAULT_PLUGINS``) exactly as it
registers a third party's, so a new flavor, notifier, playbook step, monitor, command group or router
adds itself without editing a central if-chain. Third-party packages are found through the
``steward`` entry-point group::

    # pyproject.toml of a plugin package
    [project.entry-points.steward]
    my_notifier = "my_package.steward_plugin"

    # my_package/steward_plugin.py
    from steward.plugins import hookimpl

    @hookimpl
    def steward_notifiers(workspace, config):
        return [PagerNotifier(...)] if config.webhook and "pager" in config.webhook else []

>>> sorted(name for name in available_hooks())[:3]
['steward_cli_commands', 'steward_flavors', 'steward_monitors']
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

import pluggy

__all__ = [
    "DEFAULT_PLUGINS",
    "available_hooks",
    "hookimpl",
    "hookspec",
    "plugin_manager",
]

PROJECT = "steward"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Steward's own plugins, registered like any other: each module holds the built-ins of one kind.
#: They are named, not imported, here so that this module stays at the bottom of the layers.
DEFAULT_PLUGINS = (
    "steward.model.flavors",
    "steward.loop.notify",
    "steward.loop.playbooks",
    "steward.monitoring.monitors",
    "steward.cli.commands",
    "steward.web.routers",
)


class Specs:
    """The hooks. Each returns a list; results from every plugin are concatenated."""

    @hookspec
    def steward_flavors(self) -> list[Any]:  # type: ignore[empty-body]
        """Model flavors: objects with ``name``, ``suffixes``, ``prepare(spec, trust)``,
        ``load(path, name, trusted_types, expected_sha256)`` and ``predict(model, frame, task)``
        (``steward.model.flavors.Flavor``)."""

    @hookspec
    def steward_notifiers(self, workspace: Any, config: Any) -> list[Any]:  # type: ignore[empty-body]
        """Notifiers for one system's ``notify:`` config: objects with ``channel``, ``target`` and
        ``send(message)`` (``steward.loop.notify.Notifier``)."""

    @hookspec
    def steward_playbook_steps(self) -> list[Any]:  # type: ignore[empty-body]
        """Playbook steps: objects with ``name`` and ``run(context)`` returning an outcome
        (``steward.loop.playbooks.Step``)."""

    @hookspec
    def steward_monitors(self) -> list[Any]:  # type: ignore[empty-body]
        """Monitors run over each window, in order: objects with ``name`` and ``run(run)``
        returning ``MonitorResult``s (``steward.monitoring.monitors.Monitor``)."""

    @hookspec
    def steward_cli_commands(self) -> list[Any]:  # type: ignore[empty-body]
        """Click commands or groups added to the ``steward`` command."""

    @hookspec
    def steward_routers(self) -> list[Any]:  # type: ignore[empty-body]
        """FastAPI routers the server includes; every route declares its role
        (``steward.web.roles.requires``)."""


_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager: hook specifications, Steward's built-ins, then entry points.

    Built once, under a lock, on first use (which is after every Steward module has loaded, so
    the built-ins' modules import without a cycle).
    """
    global _manager
    with _lock:
        if _manager is None:
            manager = pluggy.PluginManager(PROJECT)
            manager.add_hookspecs(Specs)
            for name in DEFAULT_PLUGINS:
                manager.register(importlib.import_module(name), name=name)
            manager.load_setuptools_entrypoints(PROJECT)
            _manager = manager
        return _manager


def available_hooks() -> list[str]:
    """The names of the hooks a plugin can implement."""
    return sorted(name for name in vars(Specs) if name.startswith("steward_"))
