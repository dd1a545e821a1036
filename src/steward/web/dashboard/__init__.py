"""The web dashboard: overview, system, features, model versions, prompts, eval runs, review queue,
history.

Server-rendered HTML; time series drawn in the browser by the vendored uPlot from JSON embedded in
the page (``chartdata``, ``static/charts.js``), the rest as inline SVG; one stylesheet and the
scripts are served from the package; nothing comes from the internet. Its ``router``
(``routes.py``) serves ``/``, ``/ui/...`` and the static files at ``/ui/static``; ``create_app``
includes it. ``docs/dashboard.md`` describes each page and what it reads.
"""

from __future__ import annotations

from steward.web.dashboard.routes import router

__all__ = ["router"]
