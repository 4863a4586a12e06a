"""The legacy tables that older readers still query, kept equal to the consolidated rows.

Every row Lockstep writes here comes from `telemetry.projection` and carries the `run_id`
(and `step_number` where it belongs to a step) of the consolidated run it stands for; rows
written by older code paths have `run_id` NULL until they are backfilled. `org_id` and
`run_id` are plain columns, not foreign keys, because these tables may live elsewhere.
Costs are NUMERIC rather than the FLOAT of the original tables so parity can be exact.
"""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

COST = {"max_digits": 20, "decimal_places": 10}


class WorkflowTrace(models.Model):
    trace_id = models.BigAutoField(primary_key=True)
    org_id = models.UUIDField()
    run_id = models.UUIDField(null=True, blank=True)
    workflow_id = models.CharField(max_length=200, null=True, blank=True)
    status = models.CharField(max_length=20)
    channel = models.CharField(max_length=50, null=True, blank=True)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    user_id = models.CharField(max_length=200, null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "workflow_trace"
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["run_id"], condition=Q(run_id__isnull=False), name="uniq_trace_run"
            ),
        ]
        indexes = [
            models.Index(fields=["org_id", "started_at"], name="trace_org_started"),
            models.Index(fields=["updated_at"], name="trace_updated"),
        ]

    def __str__(self) -> str:
        return f"trace {self.trace_id} ({self.workflow_id}, {self.status})"


class WorkflowStep(models.Model):
    step_id = models.BigAutoField(primary_key=True)
    trace = models.ForeignKey(
        WorkflowTrace, on_delete=models.CASCADE, db_column="trace_id", related_name="steps"
    )
    run_id = models.UUIDField(null=True, blank=True)
    step_number = models.IntegerField(null=True, blank=True)
    node_id = models.CharField(max_length=200, null=True, blank=True)
    name = models.CharField(max_length=200, null=True, blank=True)
    step_type = models.CharField(max_length=20, null=True, blank=True)
    status = models.CharField(max_length=20)
    retry_count = models.IntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    input_data = models.JSONField(null=True, blank=True)
    output_data = models.JSONField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "workflow_steps"
        ordering = ["trace", "step_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["run_id", "step_number"],
                condition=Q(run_id__isnull=False),
                name="uniq_legacy_step_run_number",
            ),
        ]

    def __str__(self) -> str:
        return f"trace {self.trace_id} step {self.step_number}"


class WorkflowEvent(models.Model):
    event_id = models.BigAutoField(primary_key=True)
    trace = models.ForeignKey(WorkflowTrace, on_delete=models.CASCADE, db_column="trace_id")
    step = models.ForeignKey(
        WorkflowStep, on_delete=models.CASCADE, db_column="step_id", null=True, blank=True
    )
    run_id = models.UUIDField(null=True, blank=True, db_index=True)
    step_number = models.IntegerField(null=True, blank=True)
    position = models.IntegerField(help_text="Order of the event within its step.")
    event_type = models.CharField(max_length=200)
    event_timestamp = models.DateTimeField(null=True, blank=True)
    event_data = models.JSONField(default=dict)

    class Meta:
        db_table = "workflow_events"
        ordering = ["trace", "step_number", "position"]

    def __str__(self) -> str:
        return f"{self.event_type} (trace {self.trace_id})"


class WorkflowTraceScreenshot(models.Model):
    screenshot_id = models.BigAutoField(primary_key=True)
    trace = models.ForeignKey(WorkflowTrace, on_delete=models.CASCADE, db_column="trace_id")
    step = models.ForeignKey(
        WorkflowStep, on_delete=models.CASCADE, db_column="step_id", null=True, blank=True
    )
    run_id = models.UUIDField(null=True, blank=True, db_index=True)
    step_number = models.IntegerField(null=True, blank=True)
    position = models.IntegerField()
    url = models.TextField()
    thumbnail_url = models.TextField(null=True, blank=True)
    taken_at = models.DateTimeField(null=True, blank=True)
    action = models.CharField(max_length=200, null=True, blank=True)
    selector = models.TextField(null=True, blank=True)
    element_found = models.BooleanField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)

    class Meta:
        db_table = "workflow_trace_screenshot"
        ordering = ["trace", "step_number", "position"]

    def __str__(self) -> str:
        return self.url


class WorkflowTraceContext(models.Model):
    trace = models.ForeignKey(WorkflowTrace, on_delete=models.CASCADE, db_column="trace_id")
    run_id = models.UUIDField(null=True, blank=True, db_index=True)
    context_key = models.CharField(max_length=255)
    context_value = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "workflow_trace_context"
        ordering = ["trace", "context_key"]

    def __str__(self) -> str:
        return f"{self.context_key}={self.context_value!r}"


class WorkflowTraceEndpoint(models.Model):
    trace = models.ForeignKey(WorkflowTrace, on_delete=models.CASCADE, db_column="trace_id")
    run_id = models.UUIDField(null=True, blank=True, db_index=True)
    position = models.IntegerField()
    endpoint = models.TextField()

    class Meta:
        db_table = "workflow_trace_endpoint"
        ordering = ["trace", "position"]

    def __str__(self) -> str:
        return self.endpoint


class LlmUsageLog(models.Model):
    """One row per LLM call."""

    org_id = models.UUIDField()
    user_id = models.CharField(max_length=200, null=True, blank=True)
    run_id = models.UUIDField(null=True, blank=True, db_index=True)
    step_number = models.IntegerField(null=True, blank=True)
    provider = models.CharField(max_length=100, null=True, blank=True)
    model = models.CharField(max_length=200, null=True, blank=True)
    request_type = models.CharField(max_length=200, help_text="The workflow the call was made in.")
    prompt_tokens = models.BigIntegerField(null=True, blank=True)
    completion_tokens = models.BigIntegerField(null=True, blank=True)
    total_tokens = models.BigIntegerField(null=True, blank=True)
    cached_tokens = models.BigIntegerField(null=True, blank=True)
    reasoning_tokens = models.BigIntegerField(null=True, blank=True)
    cost = models.DecimalField(null=True, blank=True, **COST)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    success = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "llm_usage_logs"
        ordering = ["-created_at"]
        indexes = [
            # Consistency checks of recent days read usage rows across organisations.
            models.Index(fields=["created_at"], name="usage_created"),
            # Recomputing one token_usage_analytics row reads exactly its key's day.
            models.Index(
                fields=["org_id", "request_type", "model", "user_id", "created_at"],
                name="usage_analytics_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.total_tokens} tokens"


class TokenUsageAnalytics(models.Model):
    """Daily totals per org, user, request type and model; recomputed from `llm_usage_logs`."""

    org_id = models.UUIDField()
    user_id = models.CharField(max_length=200, null=True, blank=True)
    date = models.DateField()
    request_type = models.CharField(max_length=200)
    model = models.CharField(max_length=200, null=True, blank=True)
    request_count = models.IntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    total_tokens_used = models.BigIntegerField(default=0)
    total_cost = models.DecimalField(default=0, **COST)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "token_usage_analytics"
        ordering = ["-date"]
        verbose_name_plural = "token usage analytics"
        constraints = [
            models.UniqueConstraint(
                fields=["org_id", "user_id", "date", "request_type", "model"],
                name="uniq_token_usage_day",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.request_type} {self.model}: {self.total_tokens_used}"


class Conversation(models.Model):
    """A chat thread; `message_count`, `total_tokens` and `total_cost` are recomputed from
    its messages whenever a write touches it."""

    org_id = models.UUIDField()
    conversation_id = models.CharField(max_length=200)
    user_id = models.CharField(max_length=200, null=True, blank=True)
    title = models.CharField(max_length=255)
    message_count = models.IntegerField(default=0, db_default=0)
    total_tokens = models.BigIntegerField(default=0, db_default=0)
    total_cost = models.DecimalField(default=0, db_default=0, **COST)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "conversations"
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["org_id", "conversation_id"], name="uniq_conversation"),
        ]

    def __str__(self) -> str:
        return self.title


class Message(models.Model):
    """One assistant message per LLM call made in a conversation."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    org_id = models.UUIDField()
    run_id = models.UUIDField(null=True, blank=True, db_index=True)
    step_number = models.IntegerField(null=True, blank=True)
    role = models.CharField(max_length=20)
    content = models.TextField()
    prompt_tokens = models.BigIntegerField(null=True, blank=True)
    completion_tokens = models.BigIntegerField(null=True, blank=True)
    total_tokens = models.BigIntegerField(null=True, blank=True)
    cost = models.DecimalField(null=True, blank=True, **COST)
    provider_used = models.CharField(max_length=100, null=True, blank=True)
    model_used = models.CharField(max_length=200, null=True, blank=True)
    response_time_ms = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    extra_metadata = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "messages"
        ordering = ["conversation", "created_at"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"
