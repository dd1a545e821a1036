"""``steward compliance report``: the obligations of a framework and the evidence Steward holds."""

from __future__ import annotations

from pathlib import Path

import click

from steward.cli.main import console, get_steward

__all__ = ["compliance_group", "compliance_report_command"]


@click.group("compliance")
def compliance_group() -> None:
    """Evidence for regulators and auditors, mapped onto a framework's obligations."""


@compliance_group.command("report")
@click.argument("system")
@click.option(
    "--framework",
    type=click.Choice(["eu-ai-act", "nist-ai-rmf"]),
    default="eu-ai-act",
    show_default=True,
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="The HTML file (JSON is written beside it). Default: compliance-SYSTEM-FRAMEWORK.html.",
)
@click.pass_context
def compliance_report_command(
    ctx: click.Context, system: str, framework: str, output: Path | None
) -> None:
    """Write SYSTEM's compliance report: each obligation, the evidence with the audit entries it
    cites (prove one with `steward audit prove ID`), and what Steward cannot evidence."""
    from steward.governance.compliance import compliance_report
    from steward.render.compliance import write_compliance_report

    steward = get_steward(ctx)
    steward.system(system)
    check = steward.verify_audit()
    report = compliance_report(steward, steward.events, system, framework, check)
    html, data = write_compliance_report(
        report, output or Path(f"compliance-{system}-{framework}.html")
    )
    statuses = [o.status for o in report.obligations]
    console.print(
        f"wrote {html} and {data}: {len(statuses)} obligations, "
        f"{statuses.count('evidenced')} evidenced, {statuses.count('partial')} partial, "
        f"{statuses.count('gap')} gaps; {len(report.cited)} audit entries cited"
    )
