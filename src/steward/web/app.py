"""The HTTP application: ``create_app`` builds the state, the lifespan, middleware and error
handlers, and includes one router per surface.

Routes live in ``web/routes/`` (health, predictions, Open Inference Protocol, alerts and SLOs,
review and suspension, playbooks and approvals) and ``web/dashboard/``, each a module-level function
taking what it needs through the dependencies of ``web/deps.py`` and declaring its role
(``web/roles.py``). Tests call the app in process through httpx's ASGI transport, and end-to-end
tests run it under a real uvicorn.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from steward import __version__
from steward.core import Steward
from steward.data.events import EventLog
from steward.delivery.serving import Service
from steward.errors import StoreError
from steward.governance.access import Authenticator, Identity, Role
from steward.loop.scheduler import Scheduler
from steward.web.auth import DEFAULT_HOSTS, Access, FormGuard, HostGuard
from steward.web.deps import bind_state
from steward.web.metrics import Metrics
from steward.web.problems import BodyLimit, install_problem_handlers
from steward.web.roles import (
    check_every_route_declares_a_role,
    declare_framework_routes,
    publish_security_schemes,
)
from steward.web.routers import available_routers
from steward.workspace.retention import run_retention

logger = logging.getLogger(__name__)

__all__ = ["create_app", "lifespan"]


def create_app(
    steward: Steward,
    *,
    events: EventLog | None = None,
    max_request_bytes: int = 64 * 1024 * 1024,
    insecure_local: bool = False,
    allowed_hosts: Iterable[str] | None = None,
) -> FastAPI:
    """The FastAPI app over one workspace; ``events`` defaults to the workspace's event log.

    Every route but the public ones needs a credential (``web/auth.py``), unless
    ``insecure_local``, where every caller acts as the local user with the ``admin`` role (only
    ``steward serve --insecure-local`` on loopback asks for it). ``allowed_hosts`` are the host
    names the app answers to (default: the ``allowed_hosts`` setting, else loopback names).
    """
    log = events if events is not None else steward.events
    service = Service(steward, log)
    metrics = Metrics(steward)
    service.on_prediction = metrics.observe_prediction
    metrics.watch_serving(service)
    app = FastAPI(
        title="Steward",
        version=__version__,
        lifespan=lifespan,
        description="Predictions checked at the door, decided by policy, logged durably.",
    )
    bind_state(app, steward=steward, service=service, events=log, metrics=metrics)
    app.state.owns_events = events is None
    hosts = frozenset(allowed_hosts or steward.settings.allowed_hosts or DEFAULT_HOSTS)
    local = Identity(steward.actor, Role.ADMIN, "local") if insecure_local else None
    app.state.access = Access(None if local else Authenticator(steward), local, hosts)
    install_problem_handlers(app)
    app.add_middleware(FormGuard)
    app.add_middleware(BodyLimit, max_bytes=max_request_bytes)
    app.add_middleware(HostGuard, hosts=hosts)
    app.add_middleware(_Timed, metrics=metrics)
    for router in available_routers():
        app.include_router(router)
    declare_framework_routes(app)
    check_every_route_declares_a_role(app)
    publish_security_schemes(app)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Retention at start, the served models loaded and the heap frozen (``_warm``), the loop's
    scheduler while serving; at the end, drain and close."""
    steward: Steward = app.state.steward
    log: EventLog = app.state.events
    # Retention runs at start, each system by its own period; `steward retention` runs it on
    # demand (e.g. from cron). Then the segments of writers that died (a killed server) are
    # rolled into Parquet now, even if this server never receives a write.
    try:
        run_retention(steward, log)
        log.flush()
    except StoreError as error:  # an object store that does not answer yet: start degraded
        logger.warning("starting without retention and rolls for now: %s", error)
    # The loop (monitors, SLOs, alerts, playbooks) every loop_interval seconds; 0 is off.
    # Of the servers sharing the store, the one holding the loop lock ticks (steward.loop.leader).
    scheduler = Scheduler(steward, log, steward.settings.loop_interval)
    app.state.scheduler = scheduler
    metrics: Metrics = app.state.metrics
    scheduler.on_tick = metrics.loop_ticks.inc
    metrics.loop_leader.set_function(lambda: float(scheduler.role == "leader"))
    scheduler.start()
    app.state.service.start()  # keeps each served system current: aliases, suspension, contract
    _warm(app.state.service, steward)
    gc.collect()
    gc.freeze()  # what start-up made lives as long as the server: out of the collector's walks
    try:
        yield
    finally:
        gc.unfreeze()  # an app in a longer process (tests, the demo) leaves nothing pinned
    scheduler.stop()
    app.state.service.close()  # let shadow scoring finish before the log closes
    if app.state.owns_events:
        log.close()  # rolls this process's segments into Parquet


def _warm(service: Service, steward: Steward) -> None:
    """Read each system's runtime and load the versions it routes to, before the first request.

    So no request waits for a model to load, and the models (and the modules they import) exist
    when the lifespan then freezes the heap. A system that cannot be served yet (no champion, an
    artifact that does not load, a store that does not answer) is left to its first request,
    which answers with the cause.

    Why the freeze: start-up leaves about 300,000 objects (modules, the app, the models) that live
    as long as the server, and every full collection walked them all. Under load, the objects of
    requests in flight reach the oldest generation fast enough for a full collection every second
    or two, each a pause of 150-200 ms (on two busy cores) that every request in flight waited
    out. Frozen (``gc.freeze``), they are skipped: a full collection takes about 2 ms.
    """
    try:
        names = [system.name for system in steward.systems()]
    except Exception:
        logger.warning("could not list the systems to load their models", exc_info=True)
        return
    for name in names:
        try:
            for version in service.runtime(name).routed():
                service.model(name, version)
        except Exception as error:
            logger.warning("system %r is not loaded at start: %s", name, error)


class _Timed:
    """Adapter so ``app.add_middleware`` can build the metrics middleware around the app."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self._timed = metrics.middleware(app)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._timed(scope, receive, send)
