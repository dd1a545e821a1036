"""Notifications through a real SMTP server and a real HTTP server; failures stay recorded."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from steward import Steward
from steward.loop.alerts import Breach, sync_alerts
from steward.loop.notify import (
    EmailNotifier,
    Message,
    WebhookNotifier,
    deliver,
    list_notifications,
    notify,
)
from tests.conftest import free_port

T0 = datetime(2026, 3, 2, tzinfo=UTC)


class Inbox:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


class Hook:
    """A real HTTP server that refuses the first ``failures`` POSTs with a 503, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.attempts += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 503 if hook.attempts <= hook.failures else 200
                if status == 200:
                    hook.bodies.append(json.loads(body))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"busy" if status == 503 else b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    running = Hook(failures=1)
    yield running
    running.close()


def declare_notify(steward: Steward, notify_config: dict[str, Any]) -> None:
    config = yaml.safe_load(steward.settings.config_path.read_text())
    config["systems"][0]["notify"] = notify_config
    steward.settings.config_path.write_text(yaml.safe_dump(config))
    steward.apply()


def test_email_reaches_a_real_smtp_server(workspace: Steward, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    alerts = sync_alerts(workspace, "churn", [Breach("slo:fast", "page", "burning 15x")], T0).fired
    notifier = EmailNotifier("127.0.0.1", port, "steward@example.com", ["ana@example.com"])
    [delivery] = deliver(workspace, Message("churn", "fired", alerts), [notifier], backoff=0.0)
    assert delivery.delivered and delivery.attempts == 1
    [(sender, recipients, content)] = inbox.messages
    assert (sender, recipients) == ("steward@example.com", ["ana@example.com"])
    mail = message_from_bytes(content)
    assert mail["Subject"] == "[steward] churn: 1 alert(s) fired"
    assert "PAGE slo:fast: burning 15x" in mail.get_payload()
    [stored] = list_notifications(workspace, alert_ids=[alerts[0].id])
    assert (stored.channel, stored.status, stored.event) == ("email", "delivered", "fired")


def test_webhook_retries_after_a_failure(workspace: Steward, hook: Hook) -> None:
    alerts = sync_alerts(
        workspace, "churn", [Breach("monitor:drift", "ticket", "tenure")], T0
    ).fired
    message = Message("churn", "fired", alerts)
    [delivery] = deliver(workspace, message, [WebhookNotifier(hook.url)], retries=2, backoff=0.01)
    assert delivery.delivered and delivery.attempts == 2 and hook.attempts == 2
    [body] = hook.bodies
    assert body["text"].startswith("[steward] churn: 1 alert(s) fired")
    assert [alert["rule"] for alert in body["alerts"]] == ["monitor:drift"]
    [stored] = list_notifications(workspace, alert_ids=[alerts[0].id])
    assert (stored.status, stored.attempts) == ("delivered", 2)


def test_an_unreachable_webhook_is_recorded_as_failed(
    workspace: Steward, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    declare_notify(workspace, {"webhook": dead, "retries": 2})
    alerts = sync_alerts(workspace, "churn", [Breach("slo:fast", "page", "burning")], T0).fired
    with caplog.at_level(logging.INFO, logger="steward.alerts"):
        deliveries = notify(workspace, "churn", "fired", alerts, backoff=0.001)
    assert [(d.channel, d.delivered) for d in deliveries] == [("log", True), ("webhook", False)]
    failed = list_notifications(workspace, status="failed")
    assert [(n.channel, n.target, n.attempts) for n in failed] == [("webhook", dead, 3)]
    assert "ConnectError" in failed[0].last_error
    assert "[steward] churn: 1 alert(s) fired" in caplog.text


def test_email_without_an_smtp_host_is_a_recorded_failure(workspace: Steward) -> None:
    declare_notify(workspace, {"email": ["ana@example.com"], "retries": 0})
    alerts = sync_alerts(workspace, "churn", [Breach("slo:fast", "page", "burning")], T0).fired
    notify(workspace, "churn", "fired", alerts, backoff=0.0)
    [failed] = list_notifications(workspace, status="failed")
    assert failed.channel == "email" and "STEWARD_SMTP_HOST" in failed.last_error


def test_alerts_firing_together_share_one_message_per_group(workspace: Steward, hook: Hook) -> None:
    hook.failures = 0
    declare_notify(workspace, {"webhook": hook.url})
    breaches = [
        Breach("slo:fast", "page", "a"),
        Breach("monitor:drift", "ticket", "b"),
        Breach("monitor:data_quality", "ticket", "c"),
    ]
    alerts = sync_alerts(workspace, "churn", breaches, T0).fired
    notify(workspace, "churn", "fired", alerts, backoff=0.0)
    grouped = sorted(sorted(a["rule"] for a in body["alerts"]) for body in hook.bodies)
    assert grouped == [["monitor:data_quality"], ["monitor:drift", "slo:fast"]]
    # Each alert still has its own record of the delivery.
    assert len(list_notifications(workspace, alert_ids=[a.id for a in alerts])) == 6
