"""The web dashboard: overview, system, model versions, prompts, eval runs, review queue, history.

Server-rendered HTML with inline SVG, one stylesheet and one small script served from the package;
nothing comes from the internet. Its ``router`` (``routes.py``) serves ``/``, ``/ui/...`` and the
static files at ``/ui/static``; ``create_app`` includes it. ``docs/dashboard.md`` describes each page
and what it reads.
"""

from __future__ import annotations

from steward.web.dashboard.routes import router

__all__ = ["router"]
