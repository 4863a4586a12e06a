from telemetry.models.consistency import CheckResult
from telemetry.models.consolidated import (
    CostSource,
    RunStatus,
    StepKind,
    WorkflowCacheState,
    WorkflowConfig,
    WorkflowRun,
    WorkflowRunStep,
)
from telemetry.models.legacy import (
    Conversation,
    LlmUsageLog,
    Message,
    TokenUsageAnalytics,
    WorkflowEvent,
    WorkflowStep,
    WorkflowTrace,
    WorkflowTraceContext,
    WorkflowTraceEndpoint,
    WorkflowTraceScreenshot,
)
from telemetry.models.outbox import CutoverState, LegacyOutbox
from telemetry.models.rollups import PeopleRollup, RollupDirtyHour, RunRollup, StepRollup
from telemetry.models.tenancy import ApiKey, Membership, Organization
from telemetry.models.webhooks import (
    EventType,
    RunEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)

__all__ = [
    "ApiKey",
    "CheckResult",
    "Conversation",
    "CostSource",
    "CutoverState",
    "EventType",
    "LegacyOutbox",
    "LlmUsageLog",
    "Membership",
    "Message",
    "Organization",
    "PeopleRollup",
    "RollupDirtyHour",
    "RunEvent",
    "RunRollup",
    "RunStatus",
    "StepRollup",
    "StepKind",
    "TokenUsageAnalytics",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "WorkflowCacheState",
    "WorkflowConfig",
    "WorkflowEvent",
    "WorkflowRun",
    "WorkflowRunStep",
    "WorkflowStep",
    "WorkflowTrace",
    "WorkflowTraceContext",
    "WorkflowTraceEndpoint",
    "WorkflowTraceScreenshot",
]
