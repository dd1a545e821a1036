"""The JSON API's routers, one module per surface, each an ``APIRouter`` named ``router``.

``health`` (healthz, readyz, metrics), ``session`` (login links, logout, whoami), ``oidc``
(sign-in through an identity provider), ``predictions`` (predict, log predictions, outcomes),
``oip`` (Open Inference Protocol v2), ``loop`` (alerts, SLOs), ``review`` (review queue,
suspension) and ``playbooks`` (actions, approvals); ``web.app.create_app`` includes them. Import a
module for its ``router`` or route functions: the routers share a name, so nothing is re-exported.
"""
