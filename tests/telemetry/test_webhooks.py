"""Lifecycle events and webhook deliveries to a real local HTTP server."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from telemetry.models import RunEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from telemetry.webhooks import deliver_due, sign, verify
from tests.conftest import full_run


class Receiver:
    """A local endpoint that records what it gets and fails the first `failures` requests."""

    def __init__(self, failures: int = 0):
        self.requests: list[tuple[dict, bytes]] = []
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                failing = len(receiver.requests) <= receiver.failures
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def subscribe(org, url, *types) -> WebhookSubscription:
    return WebhookSubscription.objects.create(
        org=org, url=url, event_types=list(types) or ["workflow_completed", "model_response"]
    )


def make_due():
    from django.utils import timezone

    WebhookDelivery.objects.update(next_attempt_at=timezone.now())


def test_a_run_records_its_lifecycle_once(ingest):
    run = full_run()
    ingest(run)
    ingest(run)  # a replay records nothing new
    events = list(RunEvent.objects.values_list("type", "step_number"))
    assert sorted(events) == [
        ("model_response", 1),
        ("model_response", 3),
        ("workflow_completed", 0),
        ("workflow_started", 0),
    ]
    done = RunEvent.objects.get(type="workflow_completed")
    assert done.payload["tokens"] == 3700 and done.payload["status"] == "completed"


def test_a_failed_run_records_workflow_failed(ingest):
    run = full_run(status="failed", error={"message": "judge said no"})
    ingest(run)
    failed = RunEvent.objects.get(type="workflow_failed")
    assert failed.payload["error"] == "judge said no"


def test_deliveries_are_signed_and_sent_once(ingest, org, receiver):
    subscription = subscribe(org, receiver.url)
    ingest(full_run())
    assert receiver.requests == []  # ingest itself never calls out
    assert deliver_due() == {"delivered": 3, "failed": 0, "dead": 0}
    assert len(receiver.requests) == 3
    for headers, body in receiver.requests:
        assert verify(subscription.secret, headers["Lockstep-Signature"], body)
        assert not verify("whsec_wrong", headers["Lockstep-Signature"], body)
        assert not verify(subscription.secret, headers["Lockstep-Signature"], body + b" ")
        payload = json.loads(body)
        assert payload["type"] == headers["Lockstep-Event-Type"]
        assert payload["organization"] == org.slug
    make_due()
    assert deliver_due() == {"delivered": 0, "failed": 0, "dead": 0}
    assert len(receiver.requests) == 3  # nothing delivered twice


def test_failures_are_retried_with_backoff_and_recorded(ingest, org):
    endpoint = Receiver(failures=2)
    try:
        subscribe(org, endpoint.url, "workflow_completed")
        ingest(full_run())
        assert deliver_due()["failed"] == 1
        delivery = WebhookDelivery.objects.get()
        assert delivery.attempts == 1 and delivery.state == "pending"
        assert deliver_due() == {"delivered": 0, "failed": 0, "dead": 0}  # backing off
        make_due()
        assert deliver_due()["failed"] == 1
        make_due()
        assert deliver_due()["delivered"] == 1
        assert WebhookAttempt.objects.filter(delivery=delivery).count() == 3
        assert list(
            WebhookAttempt.objects.order_by("attempted_at").values_list("status_code", flat=True)
        ) == [500, 500, 204]
    finally:
        endpoint.close()


def test_a_dead_endpoint_ends_as_dead_after_the_limit(ingest, org, settings):
    settings.LOCKSTEP_WEBHOOK_MAX_ATTEMPTS = 2
    subscribe(org, "http://127.0.0.1:9/nothing-listens-here", "workflow_completed")
    ingest(full_run())
    assert deliver_due(timeout_s=1)["failed"] == 1
    make_due()
    assert deliver_due(timeout_s=1)["dead"] == 1
    attempt = WebhookAttempt.objects.first()
    assert attempt.status_code is None and "Connect" in attempt.error


def test_subscriptions_only_get_their_types_and_their_organisation(
    ingest, org, other_org, receiver
):
    subscribe(org, receiver.url, "workflow_failed")
    subscribe(other_org, receiver.url, "workflow_completed", "model_response")
    ingest(full_run())
    assert WebhookDelivery.objects.count() == 0


def test_signature_format_and_replay_window():
    body = b'{"a": 1}'
    header = sign("whsec_x", 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert not verify("whsec_x", header, body)  # far too old: a replay


def test_a_failing_check_tells_each_organisation_about_its_own_runs(
    ingest, org, other_org, other_api_key, receiver
):
    from django.db import connection

    from telemetry.consistency.runner import run_checks

    mine, theirs = full_run(), full_run()
    ingest(mine)
    ingest(theirs, key=other_api_key)
    subscribe(org, receiver.url, "consistency_check_failed")
    with connection.cursor() as cur:
        cur.execute("UPDATE workflow_trace SET status = 'running'")
    run_checks()
    event = RunEvent.objects.get(type="consistency_check_failed", org=org)
    assert event.payload["check"] == "status_timing_parity"
    assert event.payload["offenders_sample"] == [mine["run_id"]]  # not the other org's run
    assert deliver_due()["delivered"] == 1
    assert json.loads(receiver.requests[0][1])["type"] == "consistency_check_failed"


def test_the_command_delivers_due_events(ingest, org, receiver):
    import io

    from django.core.management import call_command

    subscribe(org, receiver.url, "workflow_completed")
    ingest(full_run())
    out = io.StringIO()
    call_command("deliver_webhooks", stdout=out)
    assert "1 delivered" in out.getvalue() and len(receiver.requests) == 1
