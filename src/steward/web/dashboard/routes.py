"""The dashboard's routes: server-rendered pages at ``/`` and ``/ui/...``, static files, fragments.

Pages read stored results, profiles and the typed tables (see ``queries``). Time series are
embedded in the page as JSON and drawn by ``static/charts.js`` with the vendored uPlot (hover,
zoom); other JavaScript handles clicks (a heatmap cell's overlay, the review and approval buttons,
which call the JSON API). Every page is the ``viewer`` role's; the static files are public
(``web/roles.py``). Every HTML answer carries ``CONTENT_SECURITY_POLICY``: scripts only from this
site's files, never inline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount

from steward import __version__
from steward.errors import StewardError
from steward.model.registry import diff_versions
from steward.render import queries
from steward.render.templates import environment
from steward.web.dashboard.feature_page import feature_context
from steward.web.dashboard.llm_page import llm_context
from steward.web.dashboard.overlay import drift_overlay
from steward.web.dashboard.overview import overview_rows
from steward.web.dashboard.prompts_page import (
    eval_run_context,
    prompt_version_context,
    prompts_context,
)
from steward.web.dashboard.review_page import review_context
from steward.web.dashboard.system_page import system_context, window_bounds
from steward.web.deps import EventsDep, StewardDep
from steward.web.roles import Role, RoleRoute, declare, requires

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "STATIC",
    "card",
    "drift_cell",
    "eval_run",
    "feature",
    "history",
    "overview",
    "prompt_version",
    "reviews",
    "router",
    "system",
    "system_llm",
    "system_prompts",
    "version",
    "versions",
]

STATIC = Path(__file__).parent / "static"

#: Scripts and everything fetched come from this site only; no inline script runs (chart data is
#: JSON in ``<script type="application/json">``, which is data, not code). Inline styles stay
#: allowed: the server-drawn SVG and the charts' canvas sizing use them.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)


def _html(content: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        content,
        status_code=status_code,
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )


def _render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    page = environment.get_template(template).render(steward_version=__version__, **context)
    return _html(page, status_code=status_code)


def _page(build: Callable[[], HTMLResponse]) -> HTMLResponse:
    """Render a page; a mistake the user can fix (unknown system, bad version) is an HTML error page."""
    try:
        return build()
    except StewardError as error:
        return _render(
            "error.html.j2", status_code=error.status, title=error.title, detail=str(error)
        )


router = APIRouter(route_class=RoleRoute, include_in_schema=False)
router.routes.append(
    declare(
        Mount("/ui/static", StaticFiles(directory=STATIC), name="dashboard-static"), Role.ANONYMOUS
    )
)
VIEWER = [requires(Role.VIEWER)]


@router.get("/", response_class=HTMLResponse, dependencies=VIEWER)
def overview(steward: StewardDep, events: EventsDep) -> HTMLResponse:
    """The overview page: every system's surfaces, pending approvals and open alerts."""

    def build() -> HTMLResponse:
        with steward.store.read() as session:
            rows = overview_rows(steward, events, session)
            approvals = queries.pending_approvals(session)
            alerts = queries.open_alerts(session)
        return _render(
            "overview.html.j2", rows=rows, approvals=approvals, alerts=alerts, now=_now()
        )

    return _page(build)


#: ``?from=&to=``: the time picker's custom range (``from`` is a Python keyword).
FROM = Query(None, alias="from", description="custom range start, ISO date or time (UTC)")
TO = Query(None, alias="to", description="custom range end, ISO date or time (UTC)")


@router.get("/ui/systems/{name}", response_class=HTMLResponse, dependencies=VIEWER)
def system(
    name: str,
    steward: StewardDep,
    events: EventsDep,
    range: str | None = None,
    low: str | None = FROM,
    high: str | None = TO,
) -> HTMLResponse:
    """One system's page over ``?range=7d`` (a preset ending now), ``?range=FROM..TO`` or
    ``?from=&to=``: charts of its monitors, SLOs, drift heatmap and performance."""

    def build() -> HTMLResponse:
        with steward.store.read() as session:
            context = system_context(steward, events, session, name, range, low, high)
        return _render("system.html.j2", **context)

    return _page(build)


@router.get(
    "/ui/systems/{name}/features/{column}", response_class=HTMLResponse, dependencies=VIEWER
)
def feature(
    name: str,
    column: str,
    steward: StewardDep,
    range: str | None = None,
    low: str | None = FROM,
    high: str | None = TO,
) -> HTMLResponse:
    """One input feature: its drift statistics over the range and its reference vs current
    distributions (same range parameters as the system page)."""

    def build() -> HTMLResponse:
        with steward.store.read() as session:
            context = feature_context(steward, session, name, column, range, low, high)
        return _render("feature.html.j2", **context)

    return _page(build)


@router.get("/ui/systems/{name}/drift/cell", response_class=HTMLResponse, dependencies=VIEWER)
def drift_cell(name: str, column: str, start: str, end: str, steward: StewardDep) -> HTMLResponse:
    """A heatmap cell's overlay: the column's reference distribution against the window's."""

    def build() -> HTMLResponse:
        low, high = window_bounds(start, end)
        return _html(drift_overlay(steward, name, column, low, high))

    return _page(build)


@router.get("/ui/systems/{name}/versions", response_class=HTMLResponse, dependencies=VIEWER)
def versions(
    name: str, steward: StewardDep, a: str | None = None, b: str | None = None
) -> HTMLResponse:
    """The system's model versions, with a diff of any two."""

    def build() -> HTMLResponse:
        listed = steward.versions(name)
        diff = None
        if a and b:
            diff = diff_versions(steward.version(name, a), steward.version(name, b))
        return _render(
            "versions.html.j2",
            system=steward.system(name),
            versions=listed,
            diff=diff,
            a=a or "",
            b=b or "",
        )

    return _page(build)


@router.get(
    "/ui/systems/{name}/versions/{version}", response_class=HTMLResponse, dependencies=VIEWER
)
def version(name: str, version: str, steward: StewardDep) -> HTMLResponse:
    """One model version: its lineage and its alias moves."""

    def build() -> HTMLResponse:
        found = steward.version(name, version)
        moves = [
            m for m in steward.history(name) if found.version in (m.from_version, m.to_version)
        ]
        return _render("version.html.j2", system=steward.system(name), version=found, moves=moves)

    return _page(build)


@router.get(
    "/ui/systems/{name}/versions/{version}/card", response_class=HTMLResponse, dependencies=VIEWER
)
def card(name: str, version: str, steward: StewardDep) -> HTMLResponse:
    """One model version's card, as HTML."""
    return _page(lambda: _html(steward.card(name, version).to_html()))


@router.get("/ui/systems/{name}/reviews", response_class=HTMLResponse, dependencies=VIEWER)
def reviews(
    name: str,
    steward: StewardDep,
    events: EventsDep,
    page: int = 1,
    size: int = 50,
    reason: str | None = None,
    action: str | None = None,
) -> HTMLResponse:
    """The review queue of one system (``?page=&size=&reason=&action=``), with its approvals."""
    return _page(
        lambda: _render(
            "reviews.html.j2",
            **review_context(
                steward, events, name, page=page, size=size, reason=reason, action=action
            ),
        )
    )


@router.get("/ui/systems/{name}/prompts", response_class=HTMLResponse, dependencies=VIEWER)
def system_prompts(name: str, steward: StewardDep) -> HTMLResponse:
    """An llm system's prompts: versions newest first, label history and eval runs."""
    return _page(lambda: _render("prompts.html.j2", **prompts_context(steward, name)))


@router.get("/ui/systems/{name}/llm", response_class=HTMLResponse, dependencies=VIEWER)
def system_llm(
    name: str,
    steward: StewardDep,
    events: EventsDep,
    range: str | None = None,
    low: str | None = FROM,
    high: str | None = TO,
) -> HTMLResponse:
    """An llm system's calls over ``?range=7d`` (a preset ending now), ``?range=FROM..TO`` or
    ``?from=&to=``: cost, volume, latency and errors by day, prompt version and model; the newest
    calls; its output monitor's grid."""

    def build() -> HTMLResponse:
        return _render("llm.html.j2", **llm_context(steward, events, name, range, low, high))

    return _page(build)


@router.get(
    "/ui/systems/{name}/prompts/{prompt}/versions/{version}",
    response_class=HTMLResponse,
    dependencies=VIEWER,
)
def prompt_version(
    name: str, prompt: str, version: str, steward: StewardDep, against: str | None = None
) -> HTMLResponse:
    """One prompt version: its file, a diff against ``?against=N`` (default the version before)
    and its eval runs."""

    def build() -> HTMLResponse:
        context = prompt_version_context(steward, name, prompt, version, against)
        return _render("prompt_version.html.j2", **context)

    return _page(build)


@router.get("/ui/evals/{run_id}", response_class=HTMLResponse, dependencies=VIEWER)
def eval_run(run_id: str, steward: StewardDep) -> HTMLResponse:
    """One eval run: the decision, both sides' figures, the judge's consistency, every case."""
    return _page(lambda: _render("eval_run.html.j2", **eval_run_context(steward, run_id)))


@router.get("/ui/history", response_class=HTMLResponse, dependencies=VIEWER)
def history(
    steward: StewardDep, system: str | None = None, page: int = Query(0, ge=0, le=1000)
) -> HTMLResponse:
    """What happened to every system (or one), newest first, a page at a time."""

    def build() -> HTMLResponse:
        with steward.store.read() as session:
            entries, more = queries.system_history(session, system or None, page)
        names = [info.name for info in steward.systems()]
        return _render(
            "history.html.j2",
            entries=entries,
            more=more,
            page=page,
            system=system or "",
            names=names,
        )

    return _page(build)


def _now() -> datetime:
    return datetime.now(UTC)
