"""The workspace: settings, the metadata store, artifacts and the event log; config as code."""

from steward.workspace.workspace import Workspace

__all__ = ["Workspace"]
