"""Snapshots of everything a run wrote, for comparing two ways of sending it."""

from django.db import connection

TABLES = {
    "user_workflow_run": "run_id",
    "user_workflow_run_step": "run_id, step_number",
    "workflow_trace": "run_id",
    "workflow_steps": "run_id, step_number",
    "workflow_events": "run_id, step_number, position",
    "workflow_trace_screenshot": "run_id, step_number, position",
    "workflow_trace_context": "run_id, context_key",
    "workflow_trace_endpoint": "run_id, position",
    "llm_usage_logs": "run_id, step_number",
    "messages": "run_id, step_number",
    "token_usage_analytics": "org_id, user_id, date, request_type, model",
    "conversations": "org_id, conversation_id",
    "rollup_run_hourly": "org_id, hour, workflow_id, status, model",
    "rollup_step_hourly": "org_id, hour, workflow_id, kind, provider, model, cost_source",
    "rollup_people_hourly": "org_id, hour, dimension, key",
}
# Bookkeeping that legitimately differs between two equal histories.
VOLATILE = {
    "id",
    "step_id",
    "trace_id",
    "event_id",
    "screenshot_id",
    "conversation_id",
    "created_at",
    "updated_at",
    "created_by",
}


def snapshot() -> dict[str, list[dict]]:
    """Every row of every table, without surrogate ids and write times."""
    out = {}
    with connection.cursor() as cur:
        for table, order in TABLES.items():
            cur.execute(f"SELECT * FROM {table} ORDER BY {order}")
            names = [c.name for c in cur.description]
            keep = [
                i
                for i, n in enumerate(names)
                if n not in VOLATILE or table == "llm_usage_logs" and n == "created_at"
            ]
            out[table] = [{names[i]: row[i] for i in keep} for row in cur.fetchall()]
    return out


def table_ids() -> dict[str, list]:
    with connection.cursor() as cur:
        cur.execute("SELECT trace_id FROM workflow_trace ORDER BY 1")
        traces = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT step_id FROM workflow_steps ORDER BY 1")
        steps = [r[0] for r in cur.fetchall()]
    return {"traces": traces, "steps": steps}


def wipe() -> None:
    """Delete every run and legacy row (children first), keeping organisations and keys."""
    with connection.cursor() as cur:
        for table in (
            "workflow_events",
            "workflow_trace_screenshot",
            "workflow_trace_context",
            "workflow_trace_endpoint",
            "messages",
            "conversations",
            "llm_usage_logs",
            "token_usage_analytics",
            "workflow_steps",
            "workflow_trace",
            "user_workflow_run_step",
            "user_workflow_run",
        ):
            cur.execute(f"DELETE FROM {table}")
