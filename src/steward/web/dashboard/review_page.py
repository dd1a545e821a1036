"""The review queue page: pending decisions filtered, paged and counted ("51–100 of 129")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from steward.governance.review import MAX_LIMIT, ReviewItem
from steward.render import queries
from steward.workspace import Workspace

__all__ = ["PAGE_SIZES", "QueuePage", "review_context"]

#: The page sizes offered; another asked for is taken as the nearest of them.
PAGE_SIZES: Final = (10, 25, 50, 100, 200)


@dataclass(frozen=True)
class QueuePage:
    """One page of the filtered queue and the counts a person needs to trust it."""

    items: list[ReviewItem]
    page: int
    pages: int
    size: int
    matching: int
    total: int
    reasons: list[str]
    actions: list[str]
    reason: str | None
    action: str | None

    @property
    def first(self) -> int:
        return 0 if not self.matching else (self.page - 1) * self.size + 1

    @property
    def last(self) -> int:
        return min(self.page * self.size, self.matching)

    def link(self, page: int) -> str:
        """The query string of ``page`` with the same filters and size."""
        query = {"page": page, "size": self.size, "reason": self.reason, "action": self.action}
        return "?" + urlencode({k: v for k, v in query.items() if v not in (None, "")})


def review_context(
    steward: Workspace,
    events: Any,
    name: str,
    *,
    page: int = 1,
    size: int = 50,
    reason: str | None = None,
    action: str | None = None,
) -> dict[str, Any]:
    """What ``reviews.html.j2`` needs: the system, the queue's page (None without an event log),
    the pending approvals and the actions a reviewer may choose."""
    info = steward.system(name)
    pending = queries.pending_review_items(steward, events, name, limit=MAX_LIMIT)
    queue = None if pending is None else _page(pending, page, size, reason, action)
    with steward.store.read() as session:
        approvals = queries.pending_approvals(session, queries.system_id_of(session, name))
    policy = info.config.get("policy") or {}
    thresholds = [t.get("action") for t in policy.get("thresholds") or []]
    choices = [str(x) for x in dict.fromkeys([*thresholds, policy.get("default_action")]) if x]
    return {"system": info, "queue": queue, "approvals": approvals, "choices": choices}


def _page(
    pending: list[ReviewItem], page: int, size: int, reason: str | None, action: str | None
) -> QueuePage:
    reason, action = reason or None, action or None
    matching = [
        item
        for item in pending
        if (reason is None or item.reason == reason)
        and (action is None or item.intended_action == action)
    ]
    size = min(PAGE_SIZES, key=lambda offered: abs(offered - size))
    pages = max(1, math.ceil(len(matching) / size))
    page = min(max(1, page), pages)
    return QueuePage(
        items=matching[(page - 1) * size : page * size],
        page=page,
        pages=pages,
        size=size,
        matching=len(matching),
        total=len(pending),
        reasons=sorted({item.reason for item in pending}),
        actions=sorted({item.intended_action for item in pending if item.intended_action}),
        reason=reason,
        action=action,
    )
