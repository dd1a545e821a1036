"""The compliance report as one self-contained HTML file (no scripts, no network) and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from steward.governance.compliance import ComplianceReport
from steward.render.templates import environment

__all__ = ["FRAMEWORK_NAMES", "compliance_html", "write_compliance_report"]

FRAMEWORK_NAMES = {"eu-ai-act": "EU AI Act (deployer)", "nist-ai-rmf": "NIST AI RMF 1.0"}


def compliance_html(report: ComplianceReport) -> str:
    """The report as one HTML document: obligations, evidence with cited entries, and gaps."""
    template = environment.get_template("compliance.html.j2")
    return template.render(report=report, framework_name=FRAMEWORK_NAMES[report.framework])


def write_compliance_report(report: ComplianceReport, path: str | Path) -> tuple[Path, Path]:
    """Write ``path`` (HTML) and the same content as JSON beside it (``.json``); return both."""
    html = Path(path)
    html.write_text(compliance_html(report), encoding="utf-8")
    data = html.with_suffix(".json")
    data.write_text(json.dumps(report.to_dict(), indent=2, default=str), encoding="utf-8")
    return html, data
