"""The ingest contract: what a run document may hold, validated at the edge.

Pydantic v2 validates in compiled Rust code, reports every error of a document at once with
its path, and forbids unknown fields, so a client learns everything wrong in one answer.
A field left out (or null) means "unchanged": a run can arrive in pieces.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

Status = Literal["pending", "running", "completed", "failed", "cancelled"]
Kind = Literal["llm", "tool", "retrieval", "browser", "code", "other"]
Text = Annotated[str, Field(max_length=200)]
LongText = Annotated[str, Field(max_length=1_000_000)]


def _parse_rfc3339(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 timestamp string such as 2025-01-14T10:30:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value[:40]!r} is not an RFC 3339 timestamp; use a form like 2025-01-14T10:30:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value[:40]!r} has no time zone; add Z or an offset such as +02:00")
    return parsed


Timestamp = Annotated[datetime, BeforeValidator(_parse_rfc3339)]


def _text_or_json(value: Any) -> Any:
    """Prompts and responses may be a string or a list of chat messages; both are kept."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | dict):
        import orjson

        return orjson.dumps(value).decode()
    raise ValueError("expected a string, or a list or object of chat messages")


PromptText = Annotated[str | None, BeforeValidator(_text_or_json)]


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorDoc(Doc):
    message: LongText
    details: Any = None


class EventDoc(Doc):
    type: Text = Field(min_length=1)
    timestamp: Timestamp | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class ScreenshotDoc(Doc):
    url: Annotated[str, Field(min_length=1, max_length=4000)]
    thumbnail_url: Annotated[str, Field(max_length=4000)] | None = None
    timestamp: Timestamp | None = None
    action: Text | None = None
    selector: Annotated[str, Field(max_length=4000)] | None = None
    element_found: StrictBool | None = None
    confidence: Annotated[float, Field(ge=0, le=1)] | None = None


class LlmDoc(Doc):
    provider: Text = Field(min_length=1)
    model: Text = Field(min_length=1)
    usage: dict[str, Any] | None = None
    cost_usd: Annotated[Decimal, Field(ge=0, max_digits=20, decimal_places=10)] | None = None
    temperature: Annotated[float, Field(ge=0, le=10)] | None = None
    prompt: PromptText = None
    response: PromptText = None
    time_to_first_token_ms: Annotated[StrictInt, Field(ge=0)] | None = None

    @field_validator("cost_usd", mode="before")
    @classmethod
    def _cost_is_a_number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | None):
            raise ValueError("expected a number of US dollars such as 0.0042")
        return value


class StepDoc(Doc):
    step_number: Annotated[StrictInt, Field(ge=0, le=1_000_000)]
    node_id: Text | None = None
    name: Text | None = None
    kind: Kind | None = None
    status: Status | None = None
    retry_count: Annotated[StrictInt, Field(ge=0)] | None = None
    started_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    input: Any = None
    output: Any = None
    events: Annotated[list[EventDoc], Field(max_length=10_000)] | None = None
    screenshots: Annotated[list[ScreenshotDoc], Field(max_length=1_000)] | None = None
    error: ErrorDoc | None = None
    metadata: dict[str, Any] | None = None
    llm: LlmDoc | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> "StepDoc":
        if self.started_at and self.ended_at and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self


class RunDoc(Doc):
    run_id: UUID
    workflow_id: Text | None = None
    status: Status | None = None
    channel: Annotated[str, Field(max_length=50)] | None = None
    external_id: Annotated[str, Field(max_length=255)] | None = None
    user_id: Text | None = None
    conversation_id: Text | None = None
    started_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    context: dict[str, Any] | None = None
    endpoints_used: (
        Annotated[list[Annotated[str, Field(max_length=2000)]], Field(max_length=1000)] | None
    ) = None
    config_snapshot: dict[str, Any] | None = None
    error: ErrorDoc | None = None
    tier: Annotated[StrictInt, Field(ge=0, le=32767)] | None = None
    tier_reason: LongText | None = None
    steps: Annotated[list[StepDoc], Field(max_length=10_000)] = Field(default_factory=list)

    @field_validator("run_id", mode="before")
    @classmethod
    def _run_id_is_a_uuid_string(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("expected a UUID string such as 3f1c9b6e-8a51-4c3e-9d0e-2b7a4f6c1d20")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "RunDoc":
        if self.started_at and self.ended_at and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        seen: set[int] = set()
        for step in self.steps:
            if step.step_number in seen:
                raise ValueError(f"step_number {step.step_number} appears twice in steps")
            seen.add(step.step_number)
        return self


class IngestBatch(Doc):
    """The body of POST /api/v1/ingest (runs are validated one by one, so one bad run does
    not reject the others)."""

    runs: list[RunDoc]


def field_errors(error: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as `{field, message}` pairs with paths such as `steps[0].llm.model`."""
    out = []
    for item in error.errors(include_url=False):
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field; remove it (see the RunDoc schema at /api/docs/)"
        elif item["type"] == "missing":
            message = "required field is missing"
        out.append({"field": path or "(run)", "message": message})
    return out
