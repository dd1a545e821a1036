"""The web dashboard: overview, system, model versions, review queue and history pages.

Server-rendered HTML with inline SVG, one stylesheet and one small script served from the package;
nothing comes from the internet. ``install_dashboard(app, steward, events)`` mounts it at ``/`` and
``/ui/...``; ``docs/dashboard.md`` describes each page and what it reads.
"""

from __future__ import annotations

from steward.web.dashboard.routes import install_dashboard

__all__ = ["install_dashboard"]
