"""Steward's own command groups, registered through the ``steward_cli_commands`` hook.

A plugin adds commands the same way: a ``@hookimpl`` function ``steward_cli_commands()`` returning
click commands or groups, which ``steward`` attaches beside these (``steward.plugins``).
"""

from __future__ import annotations

import click

from steward.cli import (
    access,
    alerts,
    audit,
    compliance,
    contracts,
    demo,
    drift,
    erasure,
    evals,
    importing,
    incidents,
    llm,
    loop,
    models,
    monitor,
    playbooks,
    profiles,
    prompts,
    report,
    review,
    serve,
    workspace,
)
from steward.plugins import hookimpl

__all__ = ["steward_cli_commands"]


@hookimpl
def steward_cli_commands() -> list[click.Command]:
    """The built-in commands, in the order of the surfaces they serve."""
    return [
        workspace.init,
        workspace.apply,
        workspace.systems,
        workspace.settings_command,
        models.models,
        models.rollback,
        importing.import_group,
        prompts.prompts_group,
        evals.eval_group,
        llm.llm_group,
        contracts.contract,
        drift.drift_command,
        profiles.profiles_group,
        serve.serve,
        serve.retention,
        erasure.erase_command,
        monitor.monitor,
        loop.loop_group,
        alerts.alerts_group,
        alerts.slo_group,
        review.review_group,
        review.suspend_command,
        review.resume_command,
        playbooks.actions_command,
        playbooks.retrain_command,
        playbooks.compare_command,
        playbooks.promote_command,
        playbooks.approvals_group,
        report.report,
        audit.audit_group,
        compliance.compliance_group,
        incidents.incidents_group,
        access.users_group,
        access.tokens_group,
        access.login_link_command,
        demo.demo,
    ]
