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

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from steward.governance import cards
from steward.llm import prompts
from steward.llm.prompt_files import read_prompt
from steward.store import Store, audit
from steward.workspace import Workspace, systems
from steward.workspace.config import load_config

__all__ = ["Steward"]


class Steward(Workspace):
    """The workspace and every operation a user calls on it."""

    def apply(self, path: Path | None = None) -> list[systems.SystemChange]:
        """Load ``steward.yaml`` into the store, then register each prompt file whose bytes changed.

        Every prompt file is read and checked before anything is written, so a broken prompt
        leaves the store as it was.
        """
        config_path = Path(path or self.settings.config_path)
        config = load_config(config_path)
        self.check_retention(config)
        base = config_path.parent
        for system in config.systems:
            for prompt in system.prompts:
                read_prompt(base / prompt.file)  # raises, naming the file, before any write
        changes = systems.apply_config(self.store, config, actor=self.actor)
        declared = {system.name: system.prompts for system in config.systems}
        result = []
        for change in changes:
            pushed = prompts.push_prompts(
                self.store, change.name, declared.get(change.name, []), base, actor=self.actor
            )
            made = tuple(f"{item.prompt} v{item.version}" for item in pushed if item.created)
            result.append(replace(change, prompts=made) if made else change)
        return result

    def card(
        self, system: str, version: int | str = "champion", card_file: Path | None = None
    ) -> cards.ModelCard:
        info, found, history = (
            self.system(system),
            self.version(system, version),
            self.history(system),
        )
        with self.store.read() as session:
            groups = cards.group_analysis(session, system, found.version, history)
        return cards.build_card(info, found, history, card_file, groups)

    @property
    def store(self) -> Store:
        """The metadata store; its audit log signs a checkpoint into ``.steward/`` every
        ``audit.CHECKPOINT_EVERY`` entries (``docs/audit.md``)."""
        store = super().store
        audit.publish_checkpoints(
            store, self.settings.store_dir, webhook=self.settings.audit_webhook
        )
        return store

    def verify_audit(
        self, checkpoint_files: Sequence[Path] = (), public_key: Path | None = None
    ) -> audit.AuditCheck:
        """Check the audit log's hash chain, and that it extends every signed checkpoint (those in
        ``checkpoint_files``, else the workspace's own) with the verifier key in ``public_key``
        (else the workspace's); then that the bound tables and the event log's Parquet files
        are what the log binds. Rolls and compactions wait meanwhile, so the files stand still."""
        events_dir = self.settings.events_dir
        with self.events.holding_files():
            return audit.verify(
                self.store, self.settings.store_dir, checkpoint_files, public_key, events_dir
            )
