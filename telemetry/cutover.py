"""Cutover: retire the legacy tables (renamed, never dropped) and put views with their names
over the consolidated tables, so an old reader's SQL keeps working; from then on writes go to
the consolidated tables only. `rollback` restores the tables and re-projects what was written
meanwhile.

Each view returns the columns of the table it replaces, in the same order. Rows that existed
before the cutover keep their ids (joined from the retired table); rows written after it get
negative ids derived from the consolidated row, which can never collide with the old ones.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, connections, transaction
from django.utils import timezone

from telemetry.consistency.repair import reproject_runs
from telemetry.db_roles import OWNER_DB
from telemetry.models import CheckResult, CutoverState
from telemetry.projection import MESSAGE_TIME, USAGE_TIME
from telemetry.scope import all_orgs

RETIRED = "_retired"
# In the order the views are created: each reads only views created before it.
LEGACY_TABLES = [
    "workflow_trace",
    "workflow_steps",
    "workflow_events",
    "workflow_trace_screenshot",
    "workflow_trace_context",
    "workflow_trace_endpoint",
    "llm_usage_logs",
    "token_usage_analytics",
    "messages",
    "conversations",
]


def _hash(text_sql: str) -> str:
    return f"-abs(hashtextextended({text_sql}, 0))"


TRACE_ID = f"coalesce(ot.trace_id, {_hash('r.run_id::text')})"
STEP_ID = f"coalesce(os.step_id, {_hash('s.step_id::text')})"
CONVERSATION_HASH = _hash("r.org_id::text || ':' || r.conversation_id")
STEP_POSITION_HASH = _hash("s.step_id::text || ':' || e.position")
RUN_POSITION_HASH = _hash("r.run_id::text || ':' || e.position")
RUN_KEY_HASH = _hash("r.run_id::text || ':' || c.key")
CONVERSATION_ID = f"coalesce(oc.id, {CONVERSATION_HASH})"
RUN_JOIN = f"LEFT JOIN workflow_trace{RETIRED} ot ON ot.run_id = r.run_id"
STEP_JOINS = f"""JOIN user_workflow_run r ON r.run_id = s.run_id {RUN_JOIN}
    LEFT JOIN workflow_steps{RETIRED} os ON os.run_id = s.run_id
         AND os.step_number = s.step_number"""

# table -> (column expressions, FROM clause)
VIEWS: dict[str, tuple[dict[str, str], str]] = {
    "workflow_trace": (
        {
            "trace_id": TRACE_ID,
            "org_id": "r.org_id",
            "run_id": "r.run_id",
            "workflow_id": "r.workflow_id",
            "status": "r.status",
            "channel": "r.channel",
            "external_id": "r.external_id",
            "user_id": "r.user_id",
            "started_at": "r.started_at",
            "ended_at": "r.ended_at",
            "duration_ms": "r.duration_ms",
            "error_message": "r.error_message",
            "created_at": "r.created_at",
            "updated_at": "r.updated_at",
        },
        f"user_workflow_run r {RUN_JOIN}",
    ),
    "workflow_steps": (
        {
            "step_id": STEP_ID,
            "trace_id": TRACE_ID,
            "run_id": "s.run_id",
            "step_number": "s.step_number",
            "node_id": "s.node_id",
            "name": "s.name",
            "step_type": "s.kind",
            "status": "s.status",
            "retry_count": "s.retry_count",
            "started_at": "s.started_at",
            "ended_at": "s.ended_at",
            "duration_ms": "s.duration_ms",
            "input_data": "s.input_data",
            "output_data": "s.output_data",
            "error_message": "s.error_message",
        },
        f"user_workflow_run_step s {STEP_JOINS}",
    ),
    "workflow_events": (
        {
            "event_id": f"coalesce(oe.event_id, {STEP_POSITION_HASH})",
            "trace_id": TRACE_ID,
            "step_id": STEP_ID,
            "run_id": "s.run_id",
            "step_number": "s.step_number",
            "position": "e.position::int",
            "event_type": "e.value->>'type'",
            "event_timestamp": "(e.value->>'timestamp')::timestamptz",
            "event_data": "coalesce(e.value->'data', '{}')",
        },
        f"""user_workflow_run_step s
            CROSS JOIN LATERAL jsonb_array_elements(s.events) WITH ORDINALITY AS e(value, position)
            {STEP_JOINS}
            LEFT JOIN workflow_events{RETIRED} oe ON oe.run_id = s.run_id
                 AND oe.step_number = s.step_number AND oe.position = e.position""",
    ),
    "workflow_trace_screenshot": (
        {
            "screenshot_id": f"coalesce(ox.screenshot_id, {STEP_POSITION_HASH})",
            "trace_id": TRACE_ID,
            "step_id": STEP_ID,
            "run_id": "s.run_id",
            "step_number": "s.step_number",
            "position": "e.position::int",
            "url": "e.value->>'url'",
            "thumbnail_url": "e.value->>'thumbnail_url'",
            "taken_at": "(e.value->>'timestamp')::timestamptz",
            "action": "e.value->>'action'",
            "selector": "e.value->>'selector'",
            "element_found": "(e.value->>'element_found')::boolean",
            "confidence": "(e.value->>'confidence')::float8",
        },
        f"""user_workflow_run_step s
            CROSS JOIN LATERAL jsonb_array_elements(s.screenshots) WITH ORDINALITY
              AS e(value, position)
            {STEP_JOINS}
            LEFT JOIN workflow_trace_screenshot{RETIRED} ox ON ox.run_id = s.run_id
                 AND ox.step_number = s.step_number AND ox.position = e.position""",
    ),
    "workflow_trace_context": (
        {
            "id": f"coalesce(oc.id, {RUN_KEY_HASH})",
            "trace_id": TRACE_ID,
            "run_id": "r.run_id",
            "context_key": "c.key",
            "context_value": "c.value",
        },
        f"""user_workflow_run r CROSS JOIN LATERAL jsonb_each(r.context) AS c {RUN_JOIN}
            LEFT JOIN workflow_trace_context{RETIRED} oc ON oc.run_id = r.run_id
                 AND oc.context_key = c.key""",
    ),
    "workflow_trace_endpoint": (
        {
            "id": f"coalesce(oe.id, {RUN_POSITION_HASH})",
            "trace_id": TRACE_ID,
            "run_id": "r.run_id",
            "position": "e.position::int",
            "endpoint": "e.value",
        },
        f"""user_workflow_run r
            CROSS JOIN LATERAL jsonb_array_elements_text(r.endpoints_used) WITH ORDINALITY
              AS e(value, position)
            {RUN_JOIN}
            LEFT JOIN workflow_trace_endpoint{RETIRED} oe ON oe.run_id = r.run_id
                 AND oe.position = e.position""",
    ),
    "llm_usage_logs": (
        {
            "id": f"coalesce(ou.id, {_hash('s.step_id::text')})",
            "org_id": "r.org_id",
            "user_id": "r.user_id",
            "run_id": "s.run_id",
            "step_number": "s.step_number",
            "provider": "s.llm_provider",
            "model": "s.llm_model",
            "request_type": "coalesce(r.workflow_id, 'unknown')",
            "prompt_tokens": "s.input_tokens",
            "completion_tokens": "s.output_tokens",
            "total_tokens": "s.total_tokens",
            "cached_tokens": "s.cached_input_tokens",
            "reasoning_tokens": "s.reasoning_tokens",
            "cost": "s.cost_usd",
            "duration_ms": "s.duration_ms",
            "success": "s.status <> 'failed'",
            "created_at": USAGE_TIME,
        },
        f"""user_workflow_run_step s JOIN user_workflow_run r ON r.run_id = s.run_id
            LEFT JOIN llm_usage_logs{RETIRED} ou ON ou.run_id = s.run_id
                 AND ou.step_number = s.step_number
            WHERE s.llm_model IS NOT NULL""",
    ),
    "messages": (
        {
            "id": f"coalesce(om.id, {_hash('s.step_id::text')})",
            "conversation_id": CONVERSATION_ID,
            "org_id": "r.org_id",
            "run_id": "s.run_id",
            "step_number": "s.step_number",
            "role": "'assistant'::varchar",
            "content": "coalesce(s.llm_response, '')",
            "prompt_tokens": "s.input_tokens",
            "completion_tokens": "s.output_tokens",
            "total_tokens": "s.total_tokens",
            "cost": "s.cost_usd",
            "provider_used": "s.llm_provider",
            "model_used": "s.llm_model",
            "response_time_ms": "s.duration_ms",
            "created_at": MESSAGE_TIME,
            "extra_metadata": "jsonb_build_object('workflow_id', r.workflow_id, "
            "'node_id', s.node_id)",
        },
        f"""user_workflow_run_step s JOIN user_workflow_run r ON r.run_id = s.run_id
            LEFT JOIN conversations{RETIRED} oc ON oc.org_id = r.org_id
                 AND oc.conversation_id = r.conversation_id
            LEFT JOIN messages{RETIRED} om ON om.run_id = s.run_id
                 AND om.step_number = s.step_number
            WHERE s.llm_model IS NOT NULL AND r.conversation_id IS NOT NULL""",
    ),
}
# Derived tables: aggregates over the views above (plus rows older code left behind).
AGGREGATES = {
    "token_usage_analytics": f"""
        SELECT coalesce(oa.id, {
        _hash("concat_ws('|', k.org_id, k.user_id, k.date, k.request_type, k.model)")
    }) AS id,
               k.org_id, k.user_id, k.date, k.request_type, k.model, k.request_count,
               k.prompt_tokens, k.completion_tokens, k.total_tokens_used, k.total_cost,
               coalesce(oa.updated_at, k.updated_at) AS updated_at
        FROM (SELECT org_id, user_id, (created_at AT TIME ZONE 'UTC')::date AS date,
                     request_type, model, count(*)::int AS request_count,
                     coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
                     coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens,
                     coalesce(sum(total_tokens), 0)::bigint AS total_tokens_used,
                     coalesce(sum(cost), 0)::numeric(20, 10) AS total_cost,
                     max(created_at) AS updated_at
              FROM llm_usage_logs GROUP BY 1, 2, 3, 4, 5) k
        LEFT JOIN token_usage_analytics{RETIRED} oa ON oa.org_id = k.org_id
             AND oa.user_id IS NOT DISTINCT FROM k.user_id AND oa.date = k.date
             AND oa.request_type = k.request_type AND oa.model IS NOT DISTINCT FROM k.model""",
    "conversations": f"""
        SELECT {CONVERSATION_ID} AS id, r.org_id, r.conversation_id,
               coalesce(oc.user_id, r.user_id) AS user_id,
               coalesce(oc.title, r.conversation_id)::varchar(255) AS title,
               coalesce(m.n, 0)::int AS message_count,
               coalesce(m.tokens, 0)::bigint AS total_tokens,
               coalesce(m.cost, 0)::numeric(20, 10) AS total_cost,
               coalesce(oc.created_at, r.started_at, r.created_at) AS created_at,
               coalesce(oc.updated_at, r.updated_at) AS updated_at
        FROM (SELECT DISTINCT ON (org_id, conversation_id) * FROM user_workflow_run
              WHERE conversation_id IS NOT NULL
              ORDER BY org_id, conversation_id, started_at) r
        LEFT JOIN conversations{RETIRED} oc ON oc.org_id = r.org_id
             AND oc.conversation_id = r.conversation_id
        LEFT JOIN (SELECT conversation_id, count(*) AS n, sum(total_tokens) AS tokens,
                          sum(cost) AS cost FROM messages GROUP BY 1) m
             ON m.conversation_id = {CONVERSATION_ID}""",
}
# Rows older code wrote that no run stands for stay visible through the view.
LEGACY_ONLY = {"llm_usage_logs": "run_id IS NULL"}
# The views read the consolidated tables with the reader's rights, so row-level security
# still shows each organisation only its own rows.
INVOKER = "WITH (security_invoker = true)"


def _columns(cur, table: str) -> list[tuple[str, str]]:
    cur.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        [table],
    )
    return cur.fetchall()


def _view_sql(cur, table: str) -> str:
    columns = _columns(cur, table + RETIRED)
    if table in AGGREGATES:
        body = AGGREGATES[table]
        select = ", ".join(f"a.{name}::{kind} AS {name}" for name, kind in columns)
        return f"CREATE VIEW {table} {INVOKER} AS SELECT {select} FROM ({body}) a"
    expressions, source = VIEWS[table]
    select = ", ".join(f"({expressions[name]})::{kind} AS {name}" for name, kind in columns)
    sql = f"CREATE VIEW {table} {INVOKER} AS SELECT {select} FROM {source}"
    if table in LEGACY_ONLY:
        plain = ", ".join(name for name, _ in columns)
        sql += f" UNION ALL SELECT {plain} FROM {table}{RETIRED} WHERE {LEGACY_ONLY[table]}"
    return sql


@dataclass
class Readiness:
    failing_checks: list[str] = field(default_factory=list)
    checked_at: datetime | None = None  # when the whole history was last checked
    outbox_pending: int = 0
    traces_not_backfilled: int = 0
    reads: dict[str, int] = field(default_factory=dict)
    cut_over_at: datetime | None = None

    @property
    def ready(self) -> bool:
        return self.checked_at is not None and not (
            self.failing_checks
            or self.outbox_pending
            or self.traces_not_backfilled
            or self.cut_over_at
        )


def cut_over_at() -> datetime | None:
    return CutoverState.objects.values_list("cut_over_at", flat=True).first()


@all_orgs()
def readiness(check_now: bool = True) -> Readiness:
    """What stands between the legacy tables and their retirement. `check_now` runs every
    check over the whole history; otherwise the last whole-history results count."""
    from telemetry.consistency.runner import run_checks

    state = Readiness(cut_over_at=cut_over_at())
    if state.cut_over_at:
        return state
    if check_now:
        results = run_checks()
    else:
        results = list(
            CheckResult.objects.filter(window_start__isnull=True)
            .order_by("check_name", "-checked_at")
            .distinct("check_name")
        )
    state.checked_at = max((r.checked_at for r in results), default=None)
    state.failing_checks = [r.check_name for r in results if r.severity == "error" and not r.passed]
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM legacy_outbox")
        state.outbox_pending = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM workflow_trace WHERE run_id IS NULL")
        state.traces_not_backfilled = cur.fetchone()[0]
        cur.execute(
            "SELECT relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) "
            "FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            [LEGACY_TABLES],
        )
        state.reads = dict(cur.fetchall())
    return state


def cutover() -> None:
    """Retire the legacy tables and create the views, in one transaction of the schema owner
    (the app's role may not change the schema)."""
    with transaction.atomic(using=OWNER_DB), connections[OWNER_DB].cursor() as cur:
        # Writes to runs wait until the views are in place and the state says so.
        cur.execute("LOCK TABLE user_workflow_run IN SHARE ROW EXCLUSIVE MODE")
        for table in LEGACY_TABLES:
            cur.execute(f"ALTER TABLE {table} RENAME TO {table}{RETIRED}")
        for table in LEGACY_TABLES:
            cur.execute(_view_sql(cur, table))
        CutoverState.objects.using(OWNER_DB).update_or_create(
            id=1, defaults={"cut_over_at": timezone.now()}
        )


def rollback() -> int:
    """Drop the views, restore the tables, re-project the runs written since the cutover."""
    since = cut_over_at()
    if since is None:
        raise ValueError("not cut over")
    with transaction.atomic(using=OWNER_DB), connections[OWNER_DB].cursor() as cur:
        cur.execute("LOCK TABLE user_workflow_run IN SHARE ROW EXCLUSIVE MODE")
        for table in reversed(LEGACY_TABLES):
            cur.execute(f"DROP VIEW {table}")
        for table in LEGACY_TABLES:
            cur.execute(f"ALTER TABLE {table}{RETIRED} RENAME TO {table}")
        CutoverState.objects.using(OWNER_DB).all().delete()
    with all_orgs(), connection.cursor() as cur:
        cur.execute(
            "SELECT run_id FROM user_workflow_run WHERE updated_at >= %s ORDER BY 1", [since]
        )
        run_ids = [r[0] for r in cur.fetchall()]
    reproject_runs(run_ids)
    return len(run_ids)
