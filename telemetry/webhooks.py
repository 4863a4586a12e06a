"""Run lifecycle events and their delivery to webhooks.

Events are recorded in the writing transaction from the runs' stored state, once each (a
unique key per run, type and step), and a delivery is queued for every active subscription
that wants the type. Deliveries are POSTed by Celery, never inside ingest: a signed JSON body
(`Lockstep-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`), retried with
exponential backoff until a 2xx answer, every attempt recorded, never sent again once
delivered.
"""

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

import httpx
import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from telemetry.models import EventType, RunEvent, WebhookAttempt, WebhookDelivery, WorkflowRun
from telemetry.scope import all_orgs

log = logging.getLogger(__name__)

RUN_SUMMARY = """jsonb_build_object('run_id', r.run_id, 'workflow_id', r.workflow_id,
    'status', r.status, 'user_id', r.user_id, 'started_at', r.started_at,
    'ended_at', r.ended_at, 'duration_ms', r.duration_ms, 'tokens', r.llm_tokens_used,
    'cost_usd', r.cost_usd, 'error', r.error_message)"""

RECORD_EVENTS = f"""
WITH candidates AS (
  SELECT r.org_id, r.run_id, 'workflow_started' AS type, 0 AS step_number,
         coalesce(r.started_at, now()) AS occurred_at, {RUN_SUMMARY} AS payload
  FROM user_workflow_run r
  WHERE r.run_id = ANY(%(ids)s) AND (r.started_at IS NOT NULL OR r.status <> 'pending')
  UNION ALL
  SELECT r.org_id, r.run_id, 'workflow_' || r.status, 0, coalesce(r.ended_at, now()),
         {RUN_SUMMARY}
  FROM user_workflow_run r
  WHERE r.run_id = ANY(%(ids)s) AND r.status IN ('completed', 'failed')
  UNION ALL
  SELECT s.org_id, s.run_id,
         CASE WHEN s.llm_model IS NOT NULL THEN 'model_response' ELSE 'tool_called' END,
         s.step_number, coalesce(s.ended_at, s.started_at, now()),
         jsonb_build_object('run_id', s.run_id, 'step_number', s.step_number,
                            'name', s.name, 'status', s.status, 'provider', s.llm_provider,
                            'model', s.llm_model, 'tokens', s.total_tokens,
                            'cost_usd', s.cost_usd, 'duration_ms', s.duration_ms)
  FROM user_workflow_run_step s
  WHERE s.run_id = ANY(%(ids)s) AND (s.llm_model IS NOT NULL OR s.kind = 'tool')
    AND s.status IN ('completed', 'failed')
),
recorded AS (
  INSERT INTO run_lifecycle_event (org_id, run_id, type, step_number, occurred_at, payload)
  SELECT * FROM candidates ORDER BY run_id, type, step_number
  ON CONFLICT (run_id, type, step_number) DO NOTHING
  RETURNING id, org_id, type
),
queued AS (
  INSERT INTO webhook_delivery (subscription_id, event_id)
  SELECT w.id, e.id FROM recorded e
  JOIN webhook_subscription w ON w.org_id = e.org_id AND w.active AND e.type = ANY(w.event_types)
  ON CONFLICT DO NOTHING
  RETURNING id
)
SELECT count(*) FROM queued
"""


def record_events(run_ids: Sequence[UUID]) -> int:
    """Record the lifecycle events these runs' state implies; returns deliveries queued."""
    if not run_ids:
        return 0
    with connection.cursor() as cur:
        cur.execute(RECORD_EVENTS, {"ids": list(run_ids)})
        return cur.fetchone()[0]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, header: str, body: bytes, tolerance_s: int = 300) -> bool:
    """What a receiver does: check the signature and that the timestamp is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=5 * 2 ** (attempts - 1)), timedelta(hours=1))


LEASE = timedelta(minutes=2)  # a delivery in flight is not picked up again meanwhile


@all_orgs()
def deliver_due(limit: int = 100, timeout_s: float = 5.0) -> dict[str, int]:
    """POST every due delivery once; returns counts of delivered, failed and dead.

    Deliveries are claimed in a short transaction (leased for a while), then sent outside
    any transaction, so a slow endpoint holds no locks; a worker that dies mid-flight leaves
    the lease to expire and the delivery is tried again.
    """
    counts = {"delivered": 0, "failed": 0, "dead": 0}
    with transaction.atomic():
        claimed = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(state=WebhookDelivery.State.PENDING, next_attempt_at__lte=timezone.now())
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:limit]
        )
        WebhookDelivery.objects.filter(id__in=claimed).update(
            next_attempt_at=timezone.now() + LEASE
        )
    due = WebhookDelivery.objects.filter(id__in=claimed).select_related(
        "subscription", "event", "event__org"
    )
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
        for delivery in due:
            counts[_attempt(client, delivery)] += 1
    return counts


def _attempt(client: httpx.Client, delivery: WebhookDelivery) -> str:
    event = delivery.event
    body = orjson.dumps(
        {
            "id": event.pk,
            "type": event.type,
            "occurred_at": event.occurred_at,
            "organization": event.org.slug,
            "data": event.payload,
        }
    )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Lockstep-Webhooks/1",
        "Lockstep-Event-Id": str(event.pk),
        "Lockstep-Event-Type": event.type,
        "Lockstep-Signature": sign(delivery.subscription.secret, int(time.time()), body),
    }
    started = time.perf_counter()
    status_code, error = None, ""
    try:
        response = client.post(delivery.subscription.url, content=body, headers=headers)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
    WebhookAttempt.objects.create(
        delivery=delivery,
        status_code=status_code,
        error=error,
        duration_ms=round((time.perf_counter() - started) * 1000),
    )
    delivery.attempts += 1
    if not error:
        delivery.state, delivery.delivered_at = WebhookDelivery.State.DELIVERED, timezone.now()
        outcome = "delivered"
    elif delivery.attempts >= settings.LOCKSTEP_WEBHOOK_MAX_ATTEMPTS:
        delivery.state = WebhookDelivery.State.DEAD
        outcome = "dead"
    else:
        delivery.next_attempt_at = timezone.now() + backoff(delivery.attempts)
        outcome = "failed"
    delivery.save(update_fields=["attempts", "state", "delivered_at", "next_attempt_at"])
    return outcome


QUEUE_FOR_EVENTS = """
INSERT INTO webhook_delivery (subscription_id, event_id)
SELECT w.id, e.id FROM run_lifecycle_event e
JOIN webhook_subscription w ON w.org_id = e.org_id AND w.active AND e.type = ANY(w.event_types)
WHERE e.id = ANY(%s)
ON CONFLICT DO NOTHING
"""


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def record_check_failures(results) -> None:
    """A `consistency_check_failed` event for each organisation whose rows a failing error
    check names, carrying only that organisation's offending ids."""
    events = []
    for result in results:
        if result.passed or result.severity != "error":
            continue
        by_org: dict[str, list[str]] = {}
        run_ids = [i for i in result.sample_ids if not i.startswith("[")]
        for run_id, org_id in WorkflowRun.objects.filter(run_id__in=run_ids).values_list(
            "run_id", "org_id"
        ):
            by_org.setdefault(str(org_id), []).append(str(run_id))
        for key in result.sample_ids:
            if key.startswith("["):
                by_org.setdefault(str(json.loads(key)[0]), []).append(key)
        for org_id, ids in by_org.items():
            events.append(
                RunEvent(
                    org_id=org_id,
                    run_id=None,
                    type=EventType.CONSISTENCY_CHECK_FAILED,
                    occurred_at=result.checked_at,
                    payload={
                        "check": result.check_name,
                        "offenders_sample": ids,
                        "window_start": _iso(result.window_start),
                        "window_end": _iso(result.window_end),
                    },
                )
            )
    if events:
        created = RunEvent.objects.bulk_create(events)
        with connection.cursor() as cur:
            cur.execute(QUEUE_FOR_EVENTS, [[e.pk for e in created]])
