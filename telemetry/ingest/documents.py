"""Turn validated run documents into column values, and merge them onto stored rows.

Pure functions, no database: what a document means for the `user_workflow_run` and
`user_workflow_run_step` columns, and how a piece of a run combines with what is stored.
"""

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from telemetry.ingest.contract import RunDoc, StepDoc, field_errors
from telemetry.ingest.usage import UsageError, normalise_usage, price_call
from telemetry.models.consolidated import STATUS_RANK

# Columns a document can set, with their PostgreSQL types (used to read batches in SQL).
RUN_COLUMNS = {
    "workflow_id": "text",
    "status": "text",
    "channel": "text",
    "external_id": "text",
    "user_id": "text",
    "conversation_id": "text",
    "started_at": "timestamptz",
    "ended_at": "timestamptz",
    "duration_ms": "bigint",
    "context": "jsonb",
    "endpoints_used": "jsonb",
    "config_snapshot": "jsonb",
    "error_message": "text",
    "error_details": "jsonb",
    "tier": "smallint",
    "tier_reason": "text",
}
STEP_COLUMNS = {
    "node_id": "text",
    "name": "text",
    "kind": "text",
    "status": "text",
    "retry_count": "integer",
    "started_at": "timestamptz",
    "ended_at": "timestamptz",
    "duration_ms": "bigint",
    "input_data": "jsonb",
    "output_data": "jsonb",
    "screenshots": "jsonb",
    "events": "jsonb",
    "error_message": "text",
    "error_details": "jsonb",
    "metadata": "jsonb",
    "llm_provider": "text",
    "llm_model": "text",
    "llm_usage": "jsonb",
    "input_tokens": "bigint",
    "output_tokens": "bigint",
    "cached_input_tokens": "bigint",
    "cache_write_tokens": "bigint",
    "reasoning_tokens": "bigint",
    "total_tokens": "bigint",
    "cost_usd": "numeric",
    "cost_source": "text",
    "temperature": "float8",
    "time_to_first_token_ms": "integer",
    "llm_prompt": "text",
    "llm_response": "text",
}
RUN_DEFAULTS: dict[str, Any] = {
    **dict.fromkeys(RUN_COLUMNS),
    "status": "pending",
    "context": {},
    "endpoints_used": [],
}
STEP_DEFAULTS: dict[str, Any] = {
    **dict.fromkeys(STEP_COLUMNS),
    "kind": "other",
    "status": "pending",
    "retry_count": 0,
    "screenshots": [],
    "events": [],
    "metadata": {},
}


@dataclass
class PreparedRun:
    """A run document as column values: only the fields the document carried."""

    index: int
    run_id: UUID
    values: dict[str, Any]
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)


class Rejected(Exception):
    def __init__(self, index: int, run_id: Any, errors: list[dict[str, str]]):
        self.index, self.run_id, self.errors = index, run_id, errors


def prepare(index: int, raw: Any) -> PreparedRun:
    """Validate one run document and turn it into column values. Raises Rejected."""
    run_id = raw.get("run_id") if isinstance(raw, dict) else None
    if not isinstance(raw, dict):
        raise Rejected(index, None, [{"field": "(run)", "message": "expected a JSON object"}])
    try:
        doc = RunDoc.model_validate(raw)
    except ValidationError as exc:
        raise Rejected(index, run_id, field_errors(exc)) from None
    steps = {}
    for position, step in enumerate(doc.steps):
        try:
            steps[step.step_number] = step_values(step)
        except UsageError as exc:
            field_name = f"steps[{position}].llm.usage"
            raise Rejected(index, run_id, [{"field": field_name, "message": str(exc)}]) from None
    return PreparedRun(index, doc.run_id, run_values(doc), steps)


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def run_values(doc: RunDoc) -> dict[str, Any]:
    return _present(
        {
            "workflow_id": doc.workflow_id,
            "status": doc.status,
            "channel": doc.channel,
            "external_id": doc.external_id,
            "user_id": doc.user_id,
            "conversation_id": doc.conversation_id,
            "started_at": doc.started_at,
            "ended_at": doc.ended_at,
            "context": doc.context,
            "endpoints_used": doc.endpoints_used,
            "config_snapshot": doc.config_snapshot,
            "error_message": doc.error.message if doc.error else None,
            "error_details": doc.error.details if doc.error else None,
            "tier": doc.tier,
            "tier_reason": doc.tier_reason,
        }
    )


def step_values(doc: StepDoc) -> dict[str, Any]:
    values = {
        "node_id": doc.node_id,
        "name": doc.name,
        "kind": doc.kind,
        "status": doc.status,
        "retry_count": doc.retry_count,
        "started_at": doc.started_at,
        "ended_at": doc.ended_at,
        "input_data": doc.input,
        "output_data": doc.output,
        "metadata": doc.metadata,
        "error_message": doc.error.message if doc.error else None,
        "error_details": doc.error.details if doc.error else None,
    }
    if doc.events is not None:
        values["events"] = [e.model_dump(mode="json", exclude_none=True) for e in doc.events]
    if doc.screenshots is not None:
        values["screenshots"] = [
            s.model_dump(mode="json", exclude_none=True) for s in doc.screenshots
        ]
    if doc.llm is not None:
        llm = doc.llm
        usage = normalise_usage(llm.usage) if llm.usage is not None else None
        cost, source = price_call(llm.provider, llm.model, usage, llm.cost_usd)
        values.update(
            kind=doc.kind or "llm",
            llm_provider=llm.provider,
            llm_model=llm.model,
            llm_usage=llm.usage,
            cost_usd=cost,
            cost_source=str(source),
            temperature=llm.temperature,
            time_to_first_token_ms=llm.time_to_first_token_ms,
            llm_prompt=llm.prompt,
            llm_response=llm.response,
        )
        if usage is not None:
            values.update(asdict(usage), total_tokens=usage.total_tokens)
    return _present(values)


def _duration_ms(started: datetime | None, ended: datetime | None) -> int | None:
    if started is None or ended is None or ended < started:
        return None
    return round((ended - started).total_seconds() * 1000)


def merge(stored: dict[str, Any] | None, values: dict[str, Any], defaults: dict) -> dict:
    """The row after applying a piece of a document to what is stored.

    Present fields replace stored ones, context keys are merged, and status only moves
    forward (pending, running, then a final status), so pieces may arrive in any order.
    """
    row = dict(stored) if stored is not None else dict(defaults)
    for key, value in values.items():
        if key == "status" and STATUS_RANK[value] < STATUS_RANK[row["status"]]:
            continue
        if key == "context":
            value = {**(row["context"] or {}), **value}
        row[key] = value
    row["duration_ms"] = _duration_ms(row["started_at"], row["ended_at"])
    return row
