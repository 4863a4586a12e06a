"""The registry of consistency checks between the consolidated and the legacy tables.

Each check is one set-based query over the runs (or legacy rows) written in a window. It
selects the ids of the offenders from `scope`, the runs in the window, so the runner can count
what was examined and what failed in one statement.
"""

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]

# The runs a check looks at: all of them, or those written in [since, until).
RUN_SCOPE = """
SELECT * FROM user_workflow_run
WHERE (%(since)s::timestamptz IS NULL OR updated_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR updated_at < %(until)s)
"""
TRACE_SCOPE = """
SELECT * FROM workflow_trace
WHERE run_id IS NOT NULL
  AND (%(since)s::timestamptz IS NULL OR updated_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR updated_at < %(until)s)
"""
# Daily analytics keys present on either side, for the days the window touches.
ANALYTICS_SCOPE = """
SELECT org_id, user_id, date, request_type, model FROM token_usage_analytics
WHERE (%(since)s::timestamptz IS NULL OR date >= (%(since)s::timestamptz AT TIME ZONE 'UTC')::date)
  AND (%(until)s::timestamptz IS NULL OR date <= (%(until)s::timestamptz AT TIME ZONE 'UTC')::date)
UNION
SELECT org_id, user_id, (created_at AT TIME ZONE 'UTC')::date, request_type, model
FROM llm_usage_logs
WHERE (%(since)s::timestamptz IS NULL
       OR created_at >= date_trunc('day', %(since)s::timestamptz AT TIME ZONE 'UTC')
                        AT TIME ZONE 'UTC')
  AND (%(until)s::timestamptz IS NULL
       OR created_at < (date_trunc('day', %(until)s::timestamptz AT TIME ZONE 'UTC')
                        + interval '1 day') AT TIME ZONE 'UTC')
"""
CONVERSATION_SCOPE = """
SELECT * FROM conversations
WHERE (%(since)s::timestamptz IS NULL OR updated_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR updated_at < %(until)s)
"""


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    severity: Severity
    offenders: str  # SELECT <id> FROM scope ... : one row per offending run
    scope: str = RUN_SCOPE


def _count_parity(name: str, what: str, consolidated: str, legacy_table: str) -> Check:
    return Check(
        name=name,
        description=f"Runs whose number of {what} differs between the consolidated run and "
        f"{legacy_table}.",
        severity="error",
        offenders=f"""
            SELECT scope.run_id FROM scope
            WHERE ({consolidated})
               <> (SELECT count(*) FROM {legacy_table} l WHERE l.run_id = scope.run_id)""",
    )


CHECKS: list[Check] = [
    Check(
        name="run_missing_trace",
        description="Consolidated runs with no workflow_trace row.",
        severity="error",
        offenders="""
            SELECT scope.run_id FROM scope
            WHERE NOT EXISTS (SELECT 1 FROM workflow_trace t WHERE t.run_id = scope.run_id)""",
    ),
    Check(
        name="trace_without_run",
        description="workflow_trace rows whose run_id has no consolidated run (orphans).",
        severity="error",
        scope=TRACE_SCOPE,
        offenders="""
            SELECT scope.run_id FROM scope
            WHERE NOT EXISTS (SELECT 1 FROM user_workflow_run r WHERE r.run_id = scope.run_id)""",
    ),
    _count_parity(
        "step_count_parity",
        "steps",
        "SELECT count(*) FROM user_workflow_run_step s WHERE s.run_id = scope.run_id",
        "workflow_steps",
    ),
    _count_parity(
        "event_count_parity",
        "events",
        "SELECT coalesce(sum(jsonb_array_length(s.events)), 0) FROM user_workflow_run_step s "
        "WHERE s.run_id = scope.run_id",
        "workflow_events",
    ),
    _count_parity(
        "screenshot_count_parity",
        "screenshots",
        "SELECT coalesce(sum(jsonb_array_length(s.screenshots)), 0) "
        "FROM user_workflow_run_step s WHERE s.run_id = scope.run_id",
        "workflow_trace_screenshot",
    ),
    _count_parity(
        "context_key_parity",
        "context keys",
        "SELECT count(*) FROM jsonb_object_keys(scope.context)",
        "workflow_trace_context",
    ),
    _count_parity(
        "endpoint_parity",
        "endpoints",
        "jsonb_array_length(scope.endpoints_used)",
        "workflow_trace_endpoint",
    ),
    _count_parity(
        "usage_log_parity",
        "LLM calls",
        "SELECT count(*) FROM user_workflow_run_step s "
        "WHERE s.run_id = scope.run_id AND s.llm_model IS NOT NULL",
        "llm_usage_logs",
    ),
    Check(
        name="token_cost_parity",
        description="Runs whose tokens or cost differ between the run totals, the sum of its "
        "steps and the sum of its llm_usage_logs rows.",
        severity="error",
        offenders="""
            SELECT scope.run_id FROM scope
            CROSS JOIN LATERAL (
              SELECT coalesce(sum(total_tokens), 0) AS tokens, coalesce(sum(cost_usd), 0) AS cost
              FROM user_workflow_run_step s WHERE s.run_id = scope.run_id) st
            CROSS JOIN LATERAL (
              SELECT coalesce(sum(total_tokens), 0) AS tokens, coalesce(sum(cost), 0) AS cost
              FROM llm_usage_logs u WHERE u.run_id = scope.run_id) us
            WHERE scope.llm_tokens_used <> st.tokens OR st.tokens <> us.tokens
               OR scope.cost_usd <> st.cost OR st.cost <> us.cost""",
    ),
    Check(
        name="daily_analytics_parity",
        description="token_usage_analytics rows that differ from the sum of their day's "
        "llm_usage_logs, or days with usage and no analytics row (id: org|user|day|type|model).",
        severity="error",
        scope=ANALYTICS_SCOPE,
        offenders="""
            SELECT concat_ws('|', scope.org_id, scope.user_id, scope.date, scope.request_type,
                             scope.model)
            FROM scope
            LEFT JOIN token_usage_analytics a
              ON a.org_id = scope.org_id AND a.user_id IS NOT DISTINCT FROM scope.user_id
             AND a.date = scope.date AND a.request_type = scope.request_type
             AND a.model IS NOT DISTINCT FROM scope.model
            CROSS JOIN LATERAL (
              SELECT count(*) AS n, coalesce(sum(total_tokens), 0) AS tokens,
                     coalesce(sum(cost), 0) AS cost
              FROM llm_usage_logs l
              WHERE l.org_id = scope.org_id AND l.user_id IS NOT DISTINCT FROM scope.user_id
                AND l.request_type = scope.request_type
                AND l.model IS NOT DISTINCT FROM scope.model
                AND l.created_at >= (scope.date::timestamp AT TIME ZONE 'UTC')
                AND l.created_at < ((scope.date + 1)::timestamp AT TIME ZONE 'UTC')) u
            WHERE a.id IS NULL OR a.request_count <> u.n OR a.total_tokens_used <> u.tokens
               OR a.total_cost <> u.cost""",
    ),
    Check(
        name="conversation_totals",
        description="conversations whose message_count, total_tokens or total_cost differ "
        "from their messages (id: the conversation id).",
        severity="error",
        scope=CONVERSATION_SCOPE,
        offenders="""
            SELECT scope.conversation_id FROM scope
            CROSS JOIN LATERAL (
              SELECT count(*) AS n, coalesce(sum(total_tokens), 0) AS tokens,
                     coalesce(sum(cost), 0) AS cost
              FROM messages m WHERE m.conversation_id = scope.id) m
            WHERE scope.message_count <> m.n OR scope.total_tokens <> m.tokens
               OR scope.total_cost <> m.cost""",
    ),
    Check(
        name="status_timing_parity",
        description="Runs whose status differs from their trace, or whose duration differs "
        "from the trace's by more than 1 s.",
        severity="error",
        offenders="""
            SELECT scope.run_id FROM scope JOIN workflow_trace t ON t.run_id = scope.run_id
            WHERE t.status <> scope.status
               OR (t.duration_ms IS NULL) <> (scope.duration_ms IS NULL)
               OR abs(t.duration_ms - scope.duration_ms) > 1000""",
    ),
    Check(
        name="llm_step_without_tokens",
        description="LLM calls that arrived with no token usage (data quality).",
        severity="warning",
        offenders="""
            SELECT DISTINCT scope.run_id FROM scope
            JOIN user_workflow_run_step s ON s.run_id = scope.run_id
            WHERE s.llm_model IS NOT NULL AND s.total_tokens IS NULL""",
    ),
    Check(
        name="unknown_model_cost",
        description="LLM calls whose model is not in the price table, so their cost is "
        "unknown (data quality).",
        severity="warning",
        offenders="""
            SELECT DISTINCT scope.run_id FROM scope
            JOIN user_workflow_run_step s ON s.run_id = scope.run_id
            WHERE s.cost_source = 'unknown_model'""",
    ),
]

BY_NAME = {check.name: check for check in CHECKS}
