"""Lifecycle events of runs, and their delivery to the organisation's webhooks."""

import secrets

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now

from telemetry.models.tenancy import Organization


class EventType(models.TextChoices):
    WORKFLOW_STARTED = "workflow_started"
    MODEL_RESPONSE = "model_response"
    TOOL_CALLED = "tool_called"
    WORKFLOW_COMPLETED = "workflow_completed"
    WORKFLOW_FAILED = "workflow_failed"
    CONSISTENCY_CHECK_FAILED = "consistency_check_failed"


class RunEvent(models.Model):
    """Something that happened to a run, recorded once (a replay records nothing new)."""

    org = models.ForeignKey(
        Organization, on_delete=models.CASCADE, db_column="org_id", db_index=False
    )
    run_id = models.UUIDField(null=True, blank=True)
    type = models.CharField(max_length=40, choices=EventType.choices)
    step_number = models.IntegerField(default=0, help_text="0 for events of the whole run.")
    occurred_at = models.DateTimeField(db_default=Now())
    payload = models.JSONField(default=dict)

    class Meta:
        db_table = "run_lifecycle_event"
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run_id", "type", "step_number"], name="uniq_run_event"
            ),
        ]
        indexes = [models.Index(fields=["org", "occurred_at"], name="run_event_org_time")]

    def __str__(self) -> str:
        return f"{self.type} {self.run_id or ''}"


def new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(24)}"


class WebhookSubscription(models.Model):
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    event_types = ArrayField(models.CharField(max_length=40, choices=EventType.choices))
    secret = models.CharField(
        max_length=100, default=new_secret, help_text="Signs every delivery (HMAC-SHA256)."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "webhook_subscription"
        ordering = ["org", "url"]

    def __str__(self) -> str:
        return f"{self.url} ({', '.join(self.event_types)})"


class WebhookDelivery(models.Model):
    """One event for one subscription: delivered at most once, retried until then."""

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        DEAD = "dead"

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(RunEvent, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(
        max_length=20, choices=State.choices, default=State.PENDING, db_default=State.PENDING
    )
    attempts = models.IntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField(db_default=Now())
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "webhook_delivery"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event"], name="uniq_delivery"),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription.url} ({self.state})"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    attempted_at = models.DateTimeField(auto_now_add=True)
    status_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duration_ms = models.IntegerField()

    class Meta:
        db_table = "webhook_attempt"
        ordering = ["-attempted_at"]

    def __str__(self) -> str:
        return f"{self.status_code or self.error[:40]} in {self.duration_ms} ms"
