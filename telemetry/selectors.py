"""Reads of runs and the legacy rows that stand for them, always scoped to one organisation."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Exists, OuterRef, Q, QuerySet

from telemetry.models import (
    Conversation,
    LlmUsageLog,
    Message,
    Organization,
    RunEvent,
    TokenUsageAnalytics,
    WorkflowEvent,
    WorkflowRun,
    WorkflowRunStep,
    WorkflowStep,
    WorkflowTrace,
    WorkflowTraceContext,
    WorkflowTraceEndpoint,
    WorkflowTraceScreenshot,
)


@dataclass(frozen=True)
class RunFilters:
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    workflow_id: str | None = None
    model: str | None = None
    user_id: str | None = None
    conversation_id: str | None = None
    external_id: str | None = None
    context: dict[str, Any] | None = None


def filter_runs(org: Organization, filters: RunFilters) -> QuerySet[WorkflowRun]:
    runs = WorkflowRun.objects.filter(org=org)
    if filters.since:
        runs = runs.filter(started_at__gte=filters.since)
    if filters.until:
        runs = runs.filter(started_at__lt=filters.until)
    for name in ("status", "workflow_id", "user_id", "conversation_id", "external_id"):
        value = getattr(filters, name)
        if value:
            runs = runs.filter(**{name: value})
    if filters.model:
        uses_model = WorkflowRunStep.objects.filter(
            run_id=OuterRef("run_id"), llm_model=filters.model
        )
        runs = runs.filter(Exists(uses_model))
    if filters.context:
        runs = runs.filter(context__contains=filters.context)
    return runs


def get_run(org: Organization, run_id: UUID) -> WorkflowRun | None:
    return WorkflowRun.objects.filter(org=org, run_id=run_id).first()


def legacy_rows(run: WorkflowRun) -> dict[str, QuerySet]:
    """Every legacy row written for this run, by table."""
    by_run = {"run_id": run.run_id}
    conversation = Conversation.objects.filter(
        org_id=run.org_id, conversation_id=run.conversation_id
    )
    usage = LlmUsageLog.objects.filter(**by_run).order_by("step_number")
    days = Q(pk__in=[])
    for key in usage.values("org_id", "user_id", "created_at__date", "request_type", "model"):
        key["date"] = key.pop("created_at__date")
        days |= Q(**key)
    return {
        "workflow_trace": WorkflowTrace.objects.filter(**by_run),
        "workflow_steps": WorkflowStep.objects.filter(**by_run).order_by("step_number"),
        "workflow_events": WorkflowEvent.objects.filter(**by_run).order_by(
            "step_number", "position"
        ),
        "workflow_trace_screenshot": WorkflowTraceScreenshot.objects.filter(**by_run).order_by(
            "step_number", "position"
        ),
        "workflow_trace_context": WorkflowTraceContext.objects.filter(**by_run),
        "workflow_trace_endpoint": WorkflowTraceEndpoint.objects.filter(**by_run).order_by(
            "position"
        ),
        "llm_usage_logs": usage,
        "token_usage_analytics": TokenUsageAnalytics.objects.filter(days),
        "messages": Message.objects.filter(**by_run).order_by("step_number"),
        "conversations": conversation if run.conversation_id else Conversation.objects.none(),
    }


def run_events(run: WorkflowRun) -> list[RunEvent]:
    return list(RunEvent.objects.filter(run_id=run.run_id).order_by("occurred_at", "id"))
