"""Hourly rollups of the consolidated tables for the dashboard's charts.

Rows are recomputed from the base tables for every (organisation, hour) a write touched, never
incremented, so they stay exact under replays and updates. Latencies are kept as sparse
histograms with logarithmic buckets (see `telemetry.rollups`), from which percentiles are
estimated within a stated error bound.
"""

from django.db import models


class RunRollup(models.Model):
    """Runs per organisation, hour (of the run's start), workflow, status and model."""

    org_id = models.UUIDField()
    hour = models.DateTimeField()
    workflow_id = models.CharField(max_length=200, null=True)
    status = models.CharField(max_length=20)
    model = models.CharField(max_length=200, null=True, help_text="The run's last LLM model.")
    runs = models.IntegerField()
    duration_count = models.IntegerField()
    duration_sum_ms = models.BigIntegerField()
    duration_hist = models.JSONField(default=dict)
    input_tokens = models.BigIntegerField()
    output_tokens = models.BigIntegerField()
    cached_input_tokens = models.BigIntegerField()
    reasoning_tokens = models.BigIntegerField()
    total_tokens = models.BigIntegerField()
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10)

    class Meta:
        db_table = "rollup_run_hourly"
        indexes = [models.Index(fields=["org_id", "hour"], name="rollup_run_org_hour")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.workflow_id} {self.status}: {self.runs}"


class StepRollup(models.Model):
    """Steps per organisation, hour (of their run's start), workflow, kind, provider, model
    and cost source: LLM calls, tokens, cost, and latency and time-to-first-token histograms."""

    org_id = models.UUIDField()
    hour = models.DateTimeField()
    workflow_id = models.CharField(max_length=200, null=True)
    kind = models.CharField(max_length=20)
    provider = models.CharField(max_length=100, null=True)
    model = models.CharField(max_length=200, null=True)
    cost_source = models.CharField(max_length=20, null=True)
    steps = models.IntegerField()
    errors = models.IntegerField()
    input_tokens = models.BigIntegerField()
    output_tokens = models.BigIntegerField()
    cached_input_tokens = models.BigIntegerField()
    reasoning_tokens = models.BigIntegerField()
    total_tokens = models.BigIntegerField()
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10)
    latency_hist = models.JSONField(default=dict)
    ttft_hist = models.JSONField(default=dict)

    class Meta:
        db_table = "rollup_step_hourly"
        indexes = [models.Index(fields=["org_id", "hour"], name="rollup_step_org_hour")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.kind} {self.model or ''}: {self.steps}"


class PeopleRollup(models.Model):
    """Runs, tokens and cost per organisation, hour, and end user or conversation."""

    class Dimension(models.TextChoices):
        USER = "user_id"
        CONVERSATION = "conversation_id"

    org_id = models.UUIDField()
    hour = models.DateTimeField()
    dimension = models.CharField(max_length=20, choices=Dimension.choices)
    key = models.CharField(max_length=200)
    runs = models.IntegerField()
    total_tokens = models.BigIntegerField()
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10)

    class Meta:
        db_table = "rollup_people_hourly"
        indexes = [
            models.Index(fields=["org_id", "dimension", "hour"], name="rollup_people_org_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.dimension}={self.key}: {self.runs}"


class RollupDirtyHour(models.Model):
    """An (organisation, hour) whose rollups a write changed and that awaits its refresh,
    when rollups are refreshed after commit rather than inside the write."""

    org_id = models.UUIDField()
    hour = models.DateTimeField()
    marked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "rollup_dirty_hour"
        constraints = [
            models.UniqueConstraint(fields=["org_id", "hour"], name="uniq_rollup_dirty_hour")
        ]

    def __str__(self) -> str:
        return f"{self.org_id} {self.hour:%Y-%m-%d %H}:00"
