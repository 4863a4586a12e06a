"""Row-level security on every table that holds an organisation's data.

A transaction sees (and may write) only the rows of the organisation in the `lockstep.org_id`
setting (`telemetry.scope`); with none set it sees nothing. Tables without an org column are
scoped through the row they belong to. Check results span organisations (their samples name
any organisation's rows), so they have no policy at all: only the operator role reads them.
FORCE makes the policies hold for the tables' owner as well.

The org test is written `(...) IS TRUE` so the planner never uses it as an index condition:
the app's queries filter by org themselves, and on tables without statistics yet (a new
deployment, the benchmark) a plan that scanned the whole organisation through the policy
made each write 20 times slower.
"""

from django.db import migrations

# Tables with an org_id column.
BY_ORG = [
    "user_workflow_run",
    "user_workflow_run_step",
    "user_workflow_config",
    "user_workflow_cache_state",
    "workflow_trace",
    "llm_usage_logs",
    "token_usage_analytics",
    "conversations",
    "messages",
    "rollup_run_hourly",
    "rollup_step_hourly",
    "rollup_people_hourly",
    "rollup_dirty_hour",
    "legacy_outbox",
    "run_lifecycle_event",
    "webhook_subscription",
]
# Tables scoped through their parent row: (table, parent table, parent key, column).
BY_PARENT = [
    ("workflow_steps", "workflow_trace", "trace_id", "trace_id"),
    ("workflow_events", "workflow_trace", "trace_id", "trace_id"),
    ("workflow_trace_screenshot", "workflow_trace", "trace_id", "trace_id"),
    ("workflow_trace_context", "workflow_trace", "trace_id", "trace_id"),
    ("workflow_trace_endpoint", "workflow_trace", "trace_id", "trace_id"),
    ("webhook_delivery", "webhook_subscription", "id", "subscription_id"),
    ("webhook_attempt", "webhook_delivery", "id", "delivery_id"),
]
OPERATORS_ONLY = ["consistency_check_result"]

CURRENT_ORG = """
CREATE FUNCTION lockstep_org() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(current_setting('lockstep.org_id', true), '')::uuid $$;
COMMENT ON FUNCTION lockstep_org() IS
    'The organisation this transaction acts for (telemetry/scope.py); NULL: none.';
"""


def _enable(table: str) -> str:
    return (
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; "
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"
    )


def _disable(table: str) -> str:
    return (
        f"DROP POLICY IF EXISTS org_isolation ON {table}; "
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY; "
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;"
    )


forward = [CURRENT_ORG]
backward = []
for table in BY_ORG:
    forward.append(
        _enable(table)
        + f" CREATE POLICY org_isolation ON {table} USING ((org_id = lockstep_org()) IS TRUE);"
    )
for table, parent, key, column in BY_PARENT:
    # The parent's own policy applies inside the subquery: a row is visible with its parent.
    forward.append(
        _enable(table) + f" CREATE POLICY org_isolation ON {table} USING "
        f"(EXISTS (SELECT 1 FROM {parent} p WHERE p.{key} = {table}.{column}));"
    )
for table in OPERATORS_ONLY:
    forward.append(_enable(table))
for table in BY_ORG + [t for t, *_ in BY_PARENT] + OPERATORS_ONLY:
    backward.append(_disable(table))
backward.append("DROP FUNCTION lockstep_org();")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0001_initial")]

    operations = [migrations.RunSQL("\n".join(forward), "\n".join(backward))]
