"""Notifications: telling people that alerts fired or resolved, and recording whether it got through.

A notifier is anything with a ``channel``, a ``target`` and ``send(message) -> None`` that raises on
failure. Three ship: ``WebhookNotifier`` (an HTTP POST of JSON with a Slack-compatible ``text``
field and the structured alerts), ``EmailNotifier`` (SMTP; the ``smtp_*`` settings say where,
``notify.email`` in ``steward.yaml`` says to whom) and ``LogNotifier`` (Python logging, always on).
They are registered through the ``steward_notifiers`` hook (``steward.plugins``), as a plugin's are.

``deliver`` retries each channel with exponential backoff (``notify.retries`` retries after the
first attempt) and writes one ``NotificationRow`` per alert and channel: ``delivered`` or
``failed``, how many attempts, the last error. What could not be delivered stays recorded;
``steward alerts list`` and ``list_notifications`` show it.

>>> message = Message(system="churn", event="resolved", alerts=[])
>>> message.text
'[steward] churn: 0 alert(s) resolved'
"""

from __future__ import annotations

import logging
import smtplib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
from sqlalchemy import select

from steward.loop.alerts import Alert
from steward.plugins import hookimpl, plugin_manager
from steward.store import NotificationRow, utcnow
from steward.workspace import Workspace
from steward.workspace.config import NotifyConfig

__all__ = [
    "Delivery",
    "EmailNotifier",
    "LogNotifier",
    "Message",
    "Notification",
    "Notifier",
    "WebhookNotifier",
    "deliver",
    "list_notifications",
    "notifiers_for",
    "notify",
    "steward_notifiers",
]

logger = logging.getLogger("steward.alerts")


@dataclass(frozen=True)
class Message:
    """What to say: alerts of one system that ``fired`` or ``resolved`` together."""

    system: str
    event: str
    alerts: list[Alert] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Plain text for chat and email: a headline, then one line per alert."""
        head = f"[steward] {self.system}: {len(self.alerts)} alert(s) {self.event}"
        lines = [
            f"- #{alert.id} {alert.severity.upper()} {alert.rule}: {alert.summary}"
            for alert in self.alerts
        ]
        return "\n".join([head, *lines])

    def to_json(self) -> dict[str, Any]:
        """The webhook body: Slack-compatible ``text`` plus the structured alerts."""
        return {
            "text": self.text,
            "system": self.system,
            "event": self.event,
            "alerts": [alert.to_dict() for alert in self.alerts],
        }


class Notifier(Protocol):
    """A channel: ``send`` returns once the message is accepted, and raises when it is not."""

    channel: str
    target: str

    def send(self, message: Message) -> None: ...


class WebhookNotifier:
    """POST the message as JSON to ``url``; any non-2xx answer is a failure."""

    channel = "webhook"

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.target = url
        self.timeout = timeout

    def send(self, message: Message) -> None:
        response = httpx.post(self.target, json=message.to_json(), timeout=self.timeout)
        if not response.is_success:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")


class EmailNotifier:
    """Send the message by SMTP from ``sender`` to ``recipients``."""

    channel = "email"

    def __init__(
        self, host: str, port: int, sender: str, recipients: Sequence[str], timeout: float = 10.0
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.recipients = list(recipients)
        self.target = ", ".join(self.recipients)
        self.timeout = timeout

    def send(self, message: Message) -> None:
        if not self.host:
            raise RuntimeError(
                "the smtp_host setting is empty; set STEWARD_SMTP_HOST (and STEWARD_SMTP_PORT) "
                "to send alert email"
            )
        email = EmailMessage()
        email["Subject"] = message.text.splitlines()[0]
        email["From"] = self.sender
        email["To"] = self.target
        email.set_content(message.text)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(email)


class LogNotifier:
    """Write the message to the ``steward.alerts`` logger: warning when fired, info otherwise."""

    channel = "log"
    target = "steward.alerts"

    def send(self, message: Message) -> None:
        level = logging.WARNING if message.event == "fired" else logging.INFO
        logger.log(level, "%s", message.text)


@dataclass(frozen=True)
class Delivery:
    """How one channel did with one message."""

    channel: str
    target: str
    delivered: bool
    attempts: int
    error: str = ""


@dataclass(frozen=True)
class Notification:
    """One stored notification of one alert on one channel."""

    id: int
    alert_id: int
    channel: str
    target: str
    event: str
    status: str
    attempts: int
    last_error: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@hookimpl
def steward_notifiers(workspace: Workspace, config: NotifyConfig) -> list[Notifier]:
    """The built-in channels: the log always; a webhook and email when ``notify`` declares them."""
    notifiers: list[Notifier] = [LogNotifier()]
    if config.webhook:
        notifiers.append(WebhookNotifier(config.webhook))
    if config.email:
        settings = workspace.settings
        notifiers.append(
            EmailNotifier(
                settings.smtp_host, settings.smtp_port, settings.smtp_sender, config.email
            )
        )
    return notifiers


def notifiers_for(steward: Workspace, config: NotifyConfig) -> list[Notifier]:
    """Every registered plugin's notifiers for this config, the built-ins first."""
    found = plugin_manager().hook.steward_notifiers(workspace=steward, config=config)
    return [notifier for notifiers in reversed(found) for notifier in notifiers]


def deliver(
    steward: Workspace,
    message: Message,
    notifiers: Sequence[Notifier],
    *,
    retries: int = 3,
    backoff: float = 1.0,
) -> list[Delivery]:
    """Send ``message`` on every channel, retrying each; record the outcome per alert and channel.

    Attempt ``k`` (from 1) that fails waits ``backoff * 2**(k-1)`` seconds before the next.
    """
    deliveries = [_attempt(notifier, message, retries, backoff) for notifier in notifiers]
    now = utcnow()
    with steward.store.write() as session:
        for delivery in deliveries:
            for alert in message.alerts:
                session.add(
                    NotificationRow(
                        alert_id=alert.id,
                        channel=delivery.channel,
                        target=delivery.target[:500],
                        event=message.event,
                        status="delivered" if delivery.delivered else "failed",
                        attempts=delivery.attempts,
                        last_error=delivery.error,
                        created_at=now,
                        delivered_at=now if delivery.delivered else None,
                    )
                )
    return deliveries


def _attempt(notifier: Notifier, message: Message, retries: int, backoff: float) -> Delivery:
    error = ""
    for attempt in range(1, retries + 2):
        try:
            notifier.send(message)
        except Exception as failure:  # any failure of a channel is recorded, never raised
            error = f"{type(failure).__name__}: {failure}"[:2000]
            logger.warning(
                "notification by %s to %s failed (attempt %d of %d): %s",
                notifier.channel, notifier.target, attempt, retries + 1, error,
            )  # fmt: skip
            if attempt <= retries:
                time.sleep(backoff * 2 ** (attempt - 1))
            continue
        return Delivery(notifier.channel, notifier.target, True, attempt)
    return Delivery(notifier.channel, notifier.target, False, retries + 1, error)


def notify(
    steward: Workspace,
    system: str,
    event: str,
    alerts: Sequence[Alert],
    *,
    backoff: float = 1.0,
) -> list[Delivery]:
    """Tell the system's channels about ``alerts`` that ``event`` (fired or resolved), one message
    per group (``group_key``); return every delivery."""
    if not alerts:
        return []
    config = steward.system(system).declared.notify
    notifiers = notifiers_for(steward, config)
    groups: dict[str, list[Alert]] = {}
    for alert in alerts:
        groups.setdefault(alert.group_key, []).append(alert)
    deliveries = []
    for grouped in groups.values():
        message = Message(system=system, event=event, alerts=grouped)
        deliveries += deliver(steward, message, notifiers, retries=config.retries, backoff=backoff)
    return deliveries


def list_notifications(
    steward: Workspace, alert_ids: Sequence[int] | None = None, status: str | None = None
) -> list[Notification]:
    """Stored notifications, newest first, of some alerts and/or with a status."""
    query = select(NotificationRow).order_by(NotificationRow.id.desc())
    if alert_ids is not None:
        query = query.where(NotificationRow.alert_id.in_(list(alert_ids)))
    if status is not None:
        query = query.where(NotificationRow.status == status)
    with steward.store.read() as session:
        return [
            Notification(
                row.id, row.alert_id, row.channel, row.target, row.event, row.status,
                row.attempts, row.last_error,
            )
            for row in session.scalars(query)
        ]  # fmt: skip
