"""The Jinja environment shared by the dashboard's pages and the weekly report."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from steward._util.times import format_span
from steward.render.status import format_budget, format_moment, slo_state

__all__ = ["environment"]

environment = Environment(
    loader=PackageLoader("steward.render", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["moment"] = lambda value: format_moment(value)
environment.filters["iso"] = lambda value: value.isoformat() if value else ""
environment.filters["safe_svg"] = lambda value: Markup(value or "")
environment.filters["span"] = format_span
environment.filters["budget"] = format_budget
environment.filters["version"] = lambda number: "none" if number is None else f"v{number}"
environment.globals["slo_state"] = slo_state
environment.filters["shown"] = lambda value: "–" if value is None else value
