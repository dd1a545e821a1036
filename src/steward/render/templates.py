"""The Jinja environment shared by the dashboard's pages and the weekly report."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from steward.render.status import format_moment

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
