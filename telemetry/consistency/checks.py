"""The registry of consistency checks between the consolidated and the legacy tables.

Each check is one set-based query. `scope` is what it looks at (the runs written in the
window, or all of them; some checks scope legacy rows instead), and `offenders` selects one
id per offender from it: joins and grouped aggregates, no per-row loops, so the whole history
is checked with a few hash joins and a recent window with index lookups.

`repair` says how `telemetry.consistency.repair` brings an offender back: re-project the run
from the consolidated source of truth (`run`), recompute a daily analytics row (`analytics_day`)
or a conversation's totals (`conversation`); None where only the sender can fix the data.
"""

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
Repair = Literal["run", "analytics_day", "conversation", "rollup_hour"] | None

WINDOW = """(%(since)s::timestamptz IS NULL OR updated_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR updated_at < %(until)s)"""

RUN_SCOPE = f"""
SELECT run_id, org_id, status, duration_ms, context, endpoints_used, conversation_id,
       llm_tokens_used, cost_usd
FROM user_workflow_run WHERE {WINDOW}
"""
TRACE_SCOPE = f"SELECT run_id FROM workflow_trace WHERE run_id IS NOT NULL AND {WINDOW}"
CONVERSATION_SCOPE = f"SELECT * FROM conversations WHERE {WINDOW}"
# Daily analytics keys present on either side, for the UTC days the window touches.
DAY = "date_trunc('day', %(bound)s::timestamptz AT TIME ZONE 'UTC')"
ANALYTICS_SCOPE = f"""
SELECT org_id, user_id, date, request_type, model FROM token_usage_analytics
WHERE (%(since)s::timestamptz IS NULL OR date >= {DAY.replace("bound", "since")}::date)
  AND (%(until)s::timestamptz IS NULL OR date <= {DAY.replace("bound", "until")}::date)
UNION
SELECT org_id, user_id, (created_at AT TIME ZONE 'UTC')::date, request_type, model
FROM llm_usage_logs
WHERE (%(since)s::timestamptz IS NULL
       OR created_at >= {DAY.replace("bound", "since")} AT TIME ZONE 'UTC')
  AND (%(until)s::timestamptz IS NULL
       OR created_at < ({DAY.replace("bound", "until")} + interval '1 day') AT TIME ZONE 'UTC')
"""


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    severity: Severity
    offenders: str  # SELECT <one id per offender> FROM scope ...
    scope: str = RUN_SCOPE
    repair: Repair = "run"
    # Inline the scope where the planner can push filters into it (most checks); compute it
    # once where it is an expensive DISTINCT that the check reads several times.
    materialize_scope: bool = False


def per_run(table: str, value: str = "count(*)", where: str = "") -> str:
    """`value` per run of `table`, for the runs in scope."""
    condition = f"AND {where}" if where else ""
    return f"""(SELECT run_id, {value} AS n FROM {table}
               WHERE run_id IN (SELECT run_id FROM scope) {condition} GROUP BY run_id)"""


def count_parity(name: str, what: str, consolidated: str, legacy_table: str) -> Check:
    return Check(
        name=name,
        description=f"Runs whose number of {what} differs between the consolidated rows and "
        f"{legacy_table}.",
        severity="error",
        offenders=f"""
            SELECT scope.run_id FROM scope
            LEFT JOIN {consolidated} c ON c.run_id = scope.run_id
            LEFT JOIN {per_run(legacy_table)} l ON l.run_id = scope.run_id
            WHERE coalesce(c.n, 0) <> coalesce(l.n, 0)""",
    )


def run_value_parity(name: str, what: str, value: str, legacy_table: str) -> Check:
    """Like count_parity, for a count the run row itself holds (context keys, endpoints)."""
    return Check(
        name=name,
        description=f"Runs whose number of {what} differs between the consolidated run and "
        f"{legacy_table}.",
        severity="error",
        offenders=f"""
            SELECT scope.run_id FROM scope
            LEFT JOIN {per_run(legacy_table)} l ON l.run_id = scope.run_id
            WHERE {value} <> coalesce(l.n, 0)""",
    )


STEPS = "user_workflow_run_step"

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
        description="workflow_trace rows whose run_id has no consolidated run (orphans); "
        "repair removes them and every legacy row of theirs.",
        severity="error",
        scope=TRACE_SCOPE,
        offenders="""
            SELECT scope.run_id FROM scope
            WHERE NOT EXISTS (SELECT 1 FROM user_workflow_run r WHERE r.run_id = scope.run_id)""",
    ),
    count_parity("step_count_parity", "steps", per_run(STEPS), "workflow_steps"),
    count_parity(
        "event_count_parity",
        "events",
        per_run(STEPS, "sum(jsonb_array_length(events))"),
        "workflow_events",
    ),
    count_parity(
        "screenshot_count_parity",
        "screenshots",
        per_run(STEPS, "sum(jsonb_array_length(screenshots))"),
        "workflow_trace_screenshot",
    ),
    run_value_parity(
        "context_key_parity",
        "context keys",
        "(SELECT count(*) FROM jsonb_object_keys(scope.context))",
        "workflow_trace_context",
    ),
    run_value_parity(
        "endpoint_parity",
        "endpoints",
        "jsonb_array_length(scope.endpoints_used)",
        "workflow_trace_endpoint",
    ),
    count_parity(
        "usage_log_parity",
        "LLM calls",
        per_run(STEPS, where="llm_model IS NOT NULL"),
        "llm_usage_logs",
    ),
    Check(
        name="duplicate_usage_rows",
        description="Runs with more than one llm_usage_logs row for the same call.",
        severity="error",
        offenders="""
            SELECT DISTINCT run_id FROM llm_usage_logs
            WHERE run_id IN (SELECT run_id FROM scope)
            GROUP BY run_id, step_number HAVING count(*) > 1""",
    ),
    Check(
        name="token_cost_parity",
        description="Runs whose tokens or cost differ between the run totals, the sum of its "
        "steps and the sum of its llm_usage_logs rows.",
        severity="error",
        offenders=f"""
            SELECT scope.run_id FROM scope
            LEFT JOIN (SELECT run_id, sum(total_tokens) AS tokens, sum(cost_usd) AS cost
                       FROM {STEPS} WHERE run_id IN (SELECT run_id FROM scope)
                       GROUP BY run_id) st ON st.run_id = scope.run_id
            LEFT JOIN (SELECT run_id, sum(total_tokens) AS tokens, sum(cost) AS cost
                       FROM llm_usage_logs WHERE run_id IN (SELECT run_id FROM scope)
                       GROUP BY run_id) u ON u.run_id = scope.run_id
            WHERE scope.llm_tokens_used <> coalesce(st.tokens, 0)
               OR coalesce(st.tokens, 0) <> coalesce(u.tokens, 0)
               OR scope.cost_usd <> coalesce(st.cost, 0)
               OR coalesce(st.cost, 0) <> coalesce(u.cost, 0)""",
    ),
    Check(
        name="message_parity",
        description="Runs in a conversation whose messages do not match their LLM calls "
        "(one assistant message per call, with the call's tokens, cost and provider).",
        severity="error",
        offenders="""
            SELECT DISTINCT scope.run_id FROM scope
            JOIN user_workflow_run_step s ON s.run_id = scope.run_id
            FULL JOIN (SELECT * FROM messages WHERE run_id IN (SELECT run_id FROM scope)) m
              ON m.run_id = s.run_id AND m.step_number = s.step_number
            WHERE scope.conversation_id IS NOT NULL
              AND (s.llm_model IS NOT NULL OR m.id IS NOT NULL)
              AND (m.id IS NULL OR s.step_id IS NULL
                   OR m.prompt_tokens IS DISTINCT FROM s.input_tokens
                   OR m.completion_tokens IS DISTINCT FROM s.output_tokens
                   OR m.total_tokens IS DISTINCT FROM s.total_tokens
                   OR m.cost IS DISTINCT FROM s.cost_usd
                   OR m.provider_used IS DISTINCT FROM s.llm_provider)""",
    ),
    Check(
        name="daily_analytics_parity",
        description="token_usage_analytics rows that differ from the sum of their day's "
        "llm_usage_logs, or days with usage and no row (id: [org, user, day, type, model]).",
        severity="error",
        scope=ANALYTICS_SCOPE,
        repair="analytics_day",
        materialize_scope=True,
        offenders="""
            SELECT jsonb_build_array(k.org_id, k.user_id, k.date, k.request_type, k.model)
            FROM scope k
            LEFT JOIN token_usage_analytics a
              ON a.org_id = k.org_id AND a.user_id IS NOT DISTINCT FROM k.user_id
             AND a.date = k.date AND a.request_type = k.request_type
             AND a.model IS NOT DISTINCT FROM k.model
            LEFT JOIN (
              SELECT org_id, user_id, (created_at AT TIME ZONE 'UTC')::date AS date,
                     request_type, model, count(*) AS n, sum(total_tokens) AS tokens,
                     coalesce(sum(cost), 0) AS cost
              FROM llm_usage_logs
              WHERE (org_id, request_type) IN (SELECT org_id, request_type FROM scope)
                AND created_at >= (SELECT min(date) FROM scope)::timestamp AT TIME ZONE 'UTC'
                AND created_at < ((SELECT max(date) FROM scope) + 1)::timestamp
                                 AT TIME ZONE 'UTC'
              GROUP BY 1, 2, 3, 4, 5) u
              ON u.org_id = k.org_id AND u.user_id IS NOT DISTINCT FROM k.user_id
             AND u.date = k.date AND u.request_type = k.request_type
             AND u.model IS NOT DISTINCT FROM k.model
            WHERE a.id IS NULL OR u.n IS NULL OR a.request_count <> u.n
               OR a.total_tokens_used <> u.tokens OR a.total_cost <> u.cost""",
    ),
    Check(
        name="conversation_totals",
        description="conversations whose message_count, total_tokens or total_cost differ "
        "from their messages (id: [org, conversation id]).",
        severity="error",
        scope=CONVERSATION_SCOPE,
        repair="conversation",
        offenders="""
            SELECT jsonb_build_array(scope.org_id, scope.conversation_id) FROM scope
            LEFT JOIN (
              SELECT conversation_id AS id, count(*) AS n,
                     coalesce(sum(total_tokens), 0) AS tokens, coalesce(sum(cost), 0) AS cost
              FROM messages WHERE conversation_id IN (SELECT id FROM scope)
              GROUP BY conversation_id) m ON m.id = scope.id
            WHERE scope.message_count <> coalesce(m.n, 0)
               OR scope.total_tokens <> coalesce(m.tokens, 0)
               OR scope.total_cost <> coalesce(m.cost, 0)""",
    ),
    Check(
        name="rollup_parity",
        description="Hours whose dashboard rollups (runs, tokens, cost; steps and people) "
        "differ from the run tables (id: [org, hour]).",
        severity="error",
        repair="rollup_hour",
        materialize_scope=True,
        scope=f"""SELECT DISTINCT org_id, date_trunc('hour', coalesce(started_at, created_at))
                     AS hour
                  FROM user_workflow_run WHERE {WINDOW}""",
        offenders="""
            SELECT jsonb_build_array(k.org_id, k.hour) FROM scope k
            CROSS JOIN LATERAL (
              SELECT count(*) AS runs, coalesce(sum(r.llm_tokens_used), 0) AS tokens,
                     coalesce(sum(r.cost_usd), 0) AS cost, coalesce(sum(r.step_count), 0) AS steps,
                     coalesce(sum(r.cost_usd) FILTER (WHERE r.user_id IS NOT NULL), 0)
                       AS user_cost
              FROM user_workflow_run r
              WHERE r.org_id = k.org_id AND coalesce(r.started_at, r.created_at) >= k.hour
                AND coalesce(r.started_at, r.created_at) < k.hour + interval '1 hour') b
            CROSS JOIN LATERAL (
              SELECT coalesce(sum(runs), 0) AS runs, coalesce(sum(total_tokens), 0) AS tokens,
                     coalesce(sum(cost_usd), 0) AS cost
              FROM rollup_run_hourly WHERE org_id = k.org_id AND hour = k.hour) rr
            CROSS JOIN LATERAL (
              SELECT coalesce(sum(steps), 0) AS steps
              FROM rollup_step_hourly WHERE org_id = k.org_id AND hour = k.hour) rs
            CROSS JOIN LATERAL (
              SELECT coalesce(sum(cost_usd), 0) AS cost FROM rollup_people_hourly
              WHERE org_id = k.org_id AND dimension = 'user_id' AND hour = k.hour) rp
            WHERE (rr.runs <> b.runs OR rr.tokens <> b.tokens OR rr.cost <> b.cost
                   OR rs.steps <> b.steps OR rp.cost <> b.user_cost)
              AND NOT EXISTS (  -- queued for its refresh: not wrong, just not done yet
                SELECT 1 FROM rollup_dirty_hour d WHERE d.org_id = k.org_id AND d.hour = k.hour)""",
    ),
    Check(
        name="status_timing_parity",
        description="Runs whose status differs from their trace's, or whose duration differs "
        "by more than 1 s.",
        severity="error",
        offenders="""
            SELECT scope.run_id FROM scope JOIN workflow_trace t ON t.run_id = scope.run_id
            WHERE t.status <> scope.status
               OR (t.duration_ms IS NULL) <> (scope.duration_ms IS NULL)
               OR abs(t.duration_ms - scope.duration_ms) > 1000""",
    ),
    Check(
        name="outbox_dead_letters",
        description="Runs whose legacy rows could not be written in async mode after every "
        "retry (dead letters); repair re-projects them once the cause is fixed.",
        severity="error",
        scope="""SELECT DISTINCT run_id FROM legacy_outbox
                 WHERE (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
                   AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s)""",
        offenders="""
            SELECT DISTINCT o.run_id FROM legacy_outbox o
            WHERE o.dead_at IS NOT NULL AND o.run_id IN (SELECT run_id FROM scope)""",
    ),
    Check(
        name="step_number_gaps",
        description="Runs whose step numbers skip a number (a step may be missing upstream).",
        severity="warning",
        repair=None,
        offenders=f"""
            SELECT run_id FROM {STEPS} WHERE run_id IN (SELECT run_id FROM scope)
            GROUP BY run_id HAVING max(step_number) - min(step_number) + 1 <> count(*)""",
    ),
    Check(
        name="llm_step_without_tokens",
        description="LLM calls that arrived with no token usage (data quality: fix the sender).",
        severity="warning",
        repair=None,
        offenders=f"""
            SELECT DISTINCT run_id FROM {STEPS}
            WHERE run_id IN (SELECT run_id FROM scope)
              AND llm_model IS NOT NULL AND total_tokens IS NULL""",
    ),
    Check(
        name="unknown_model_cost",
        description="LLM calls whose model is not in the price table, so their cost is "
        "unknown (data quality: send cost_usd or use a known model name).",
        severity="warning",
        repair=None,
        offenders=f"""
            SELECT DISTINCT run_id FROM {STEPS}
            WHERE run_id IN (SELECT run_id FROM scope) AND cost_source = 'unknown_model'""",
    ),
]

BY_NAME = {check.name: check for check in CHECKS}
