"""The consolidated schema: the source of truth that every legacy row is projected from."""

from django.contrib.postgres.functions import RandomUUID
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F
from django.db.models.functions import Coalesce, Now

from telemetry.models.tenancy import Organization


class RunStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A run or step only moves forward: a late "running" piece never undoes "completed".
STATUS_RANK = {"pending": 0, "running": 1, "completed": 2, "failed": 2, "cancelled": 2}


class StepKind(models.TextChoices):
    LLM = "llm"
    TOOL = "tool"
    RETRIEVAL = "retrieval"
    BROWSER = "browser"
    CODE = "code"
    OTHER = "other"


class CostSource(models.TextChoices):
    CLIENT = "client", "sent by the client"
    PRICE_TABLE = "price_table", "priced from the price table"
    UNKNOWN_MODEL = "unknown_model", "model not in the price table"
    NO_USAGE = "no_usage", "no token usage sent"


class WorkflowRun(models.Model):
    """One execution of a workflow (`user_workflow_run`). Token and cost totals are
    derived from the steps by the ingest writer and never sent by clients."""

    run_id = models.UUIDField(primary_key=True)
    # Every query on runs starts with the organisation: the composite indexes below cover it.
    org = models.ForeignKey(
        Organization, on_delete=models.PROTECT, db_column="org_id", db_index=False
    )
    workflow_id = models.CharField(max_length=200, null=True, blank=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING)
    channel = models.CharField(max_length=50, null=True, blank=True)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    user_id = models.CharField(max_length=200, null=True, blank=True, help_text="End user.")
    conversation_id = models.CharField(max_length=200, null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    context = models.JSONField(default=dict, db_default={})
    endpoints_used = models.JSONField(default=list, db_default=[])
    config_snapshot = models.JSONField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    error_details = models.JSONField(null=True, blank=True)
    llm_prompt = models.TextField(null=True, blank=True)
    llm_response = models.TextField(null=True, blank=True)
    llm_model = models.CharField(max_length=200, null=True, blank=True)
    llm_tokens_used = models.BigIntegerField(default=0, db_default=0)
    input_tokens = models.BigIntegerField(default=0, db_default=0)
    output_tokens = models.BigIntegerField(default=0, db_default=0)
    cached_input_tokens = models.BigIntegerField(default=0, db_default=0)
    reasoning_tokens = models.BigIntegerField(default=0, db_default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, default=0, db_default=0)
    step_count = models.IntegerField(default=0, db_default=0)
    tier = models.SmallIntegerField(null=True, blank=True)
    tier_reason = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    created_by = models.ForeignKey(
        "telemetry.ApiKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_column="created_by",
        db_index=False,  # keys are revoked, never deleted: no lookup of runs by key
        related_name="+",
        help_text="The API key that first sent this run.",
    )
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "user_workflow_run"
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["org", "started_at"], name="run_org_started"),
            models.Index(fields=["org", "created_at"], name="run_org_created"),
            models.Index(fields=["org", "workflow_id", "started_at"], name="run_org_workflow"),
            models.Index(fields=["org", "user_id"], name="run_org_user"),
            models.Index(fields=["org", "conversation_id"], name="run_org_conversation"),
            models.Index(fields=["org", "external_id"], name="run_org_external"),
            # Rollups bucket a run by its start, or its arrival while the start is unknown.
            models.Index(
                F("org"), Coalesce("started_at", "created_at"), name="run_org_bucket_time"
            ),
            # The most expensive and the slowest runs of a range.
            models.Index(fields=["org", "cost_usd"], name="run_org_cost"),
            models.Index(fields=["org", "duration_ms"], name="run_org_duration"),
            # Consistency checks over a recent window select runs by their last write.
            models.Index(fields=["updated_at"], name="run_updated"),
            GinIndex(fields=["context"], name="run_context_gin", opclasses=["jsonb_path_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id or '?'} {self.run_id} ({self.status})"


class WorkflowRunStep(models.Model):
    """One node a run went through (`user_workflow_run_step`), with its LLM call if any."""

    step_id = models.UUIDField(primary_key=True, db_default=RandomUUID(), editable=False)
    # (run_id, step_number) is unique, which indexes run_id; (org, ...) indexes cover org.
    run = models.ForeignKey(
        WorkflowRun,
        on_delete=models.CASCADE,
        db_column="run_id",
        related_name="steps",
        db_index=False,
    )
    org = models.ForeignKey(
        Organization, on_delete=models.PROTECT, db_column="org_id", db_index=False
    )
    step_number = models.IntegerField()
    node_id = models.CharField(max_length=200, null=True, blank=True)
    name = models.CharField(max_length=200, null=True, blank=True)
    kind = models.CharField(max_length=20, choices=StepKind.choices, default=StepKind.OTHER)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING)
    retry_count = models.IntegerField(default=0, db_default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    input_data = models.JSONField(null=True, blank=True)
    output_data = models.JSONField(null=True, blank=True)
    screenshots = models.JSONField(default=list, db_default=[])
    events = models.JSONField(default=list, db_default=[])
    error_message = models.TextField(null=True, blank=True)
    error_details = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, db_default={})
    llm_provider = models.CharField(max_length=100, null=True, blank=True)
    llm_model = models.CharField(max_length=200, null=True, blank=True)
    llm_usage = models.JSONField(null=True, blank=True, help_text="Usage as the provider sent it.")
    input_tokens = models.BigIntegerField(null=True, blank=True)
    output_tokens = models.BigIntegerField(null=True, blank=True)
    cached_input_tokens = models.BigIntegerField(null=True, blank=True)
    cache_write_tokens = models.BigIntegerField(null=True, blank=True)
    reasoning_tokens = models.BigIntegerField(null=True, blank=True)
    total_tokens = models.BigIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    cost_source = models.CharField(max_length=20, choices=CostSource.choices, null=True, blank=True)
    temperature = models.FloatField(null=True, blank=True)
    time_to_first_token_ms = models.IntegerField(null=True, blank=True)
    llm_prompt = models.TextField(null=True, blank=True)
    llm_response = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "user_workflow_run_step"
        ordering = ["run", "step_number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step_number"], name="uniq_run_step_number"),
        ]
        indexes = [
            models.Index(fields=["org", "started_at"], name="step_org_started"),
            models.Index(fields=["org", "llm_model", "started_at"], name="step_org_model"),
            models.Index(fields=["org", "duration_ms"], name="step_org_duration"),
            GinIndex(fields=["events"], name="step_events_gin", opclasses=["jsonb_path_ops"]),
        ]

    def __str__(self) -> str:
        return f"step {self.step_number} {self.name or self.node_id or ''} ({self.status})"


class WorkflowConfig(models.Model):
    """A workflow's configuration (`user_workflow_config`, was `workflow_configs`)."""

    id = models.UUIDField(primary_key=True, db_default=RandomUUID(), editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, db_column="org_id")
    workflow_id = models.CharField(max_length=200)
    config_key = models.CharField(max_length=200)
    config_value = models.JSONField(default=dict)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "user_workflow_config"
        ordering = ["workflow_id", "config_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "workflow_id", "config_key"], name="uniq_workflow_config_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id}: {self.config_key}"


class WorkflowCacheState(models.Model):
    """Cached intermediate state of a workflow (`user_workflow_cache_state`, was `micro_state`)."""

    id = models.UUIDField(primary_key=True, db_default=RandomUUID(), editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, db_column="org_id")
    workflow_id = models.CharField(max_length=200)
    cache_key = models.CharField(max_length=255)
    state = models.JSONField(default=dict)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "user_workflow_cache_state"
        ordering = ["workflow_id", "cache_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "workflow_id", "cache_key"], name="uniq_workflow_cache_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id}: {self.cache_key}"
