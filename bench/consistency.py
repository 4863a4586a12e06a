"""Consistency-check benchmark: the full check suite over 1,000,000 runs / 5,000,000 steps
(with their legacy rows) and over the last hour, printing rows verified per second.

Targets on this machine: full suite <= 30 s, last hour <= 100 ms. The data is generated with
set-based SQL in a database of its own (`lockstep_bench_checks` beside DATABASE_URL) and kept
between runs when it already has the requested size.

    python bench/consistency.py                 # 1,000,000 runs
    python bench/consistency.py --runs 20000    # a quick look
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

BENCH_DB = "lockstep_bench_checks"

# Each run: 5 steps (2 and 4 are LLM calls) with one event each, two context keys, one
# endpoint; every tenth run is in a conversation. Times spread evenly over the last 30 days.
GENERATE = [
    """INSERT INTO user_workflow_run (run_id, org_id, workflow_id, status, channel, user_id,
         conversation_id, started_at, ended_at, duration_ms, context, endpoints_used,
         llm_model, llm_tokens_used, input_tokens, output_tokens, cost_usd, step_count,
         created_at, updated_at)
       SELECT md5(i::text)::uuid, %(org)s, 'wf-' || i %% 5, 'completed', 'web',
         'user-' || i %% 100, CASE WHEN i %% 10 = 0 THEN 'conv-' || i %% 5000 END,
         t, t + interval '5 s', 5000,
         jsonb_build_object('correlation_id', 'c-' || i, 'shard', i %% 4), '["/api/a"]',
         'gpt-4o-mini', 300, 200, 100, 0.002, 5, t, t
       FROM generate_series(1, %(runs)s) i,
            LATERAL (SELECT now() - (%(runs)s - i) * (interval '30 days' / %(runs)s) AS t) ts""",
    """INSERT INTO user_workflow_run_step (run_id, org_id, step_number, node_id, name, kind,
         status, retry_count, started_at, ended_at, duration_ms, events, screenshots, metadata,
         llm_provider, llm_model, input_tokens, output_tokens, total_tokens, cost_usd,
         cost_source)
       SELECT r.run_id, r.org_id, n, 'node-' || n, 'step ' || n,
         CASE WHEN n IN (2, 4) THEN 'llm' ELSE 'tool' END, 'completed', 0,
         r.started_at + n * interval '1 s', r.started_at + n * interval '1 s' + interval '500 ms',
         500, jsonb_build_array(jsonb_build_object('type', 'done', 'data', '{}'::jsonb)),
         '[]', '{}',
         CASE WHEN n IN (2, 4) THEN 'openai' END, CASE WHEN n IN (2, 4) THEN 'gpt-4o-mini' END,
         CASE WHEN n IN (2, 4) THEN 100 END, CASE WHEN n IN (2, 4) THEN 50 END,
         CASE WHEN n IN (2, 4) THEN 150 END, CASE WHEN n IN (2, 4) THEN 0.001 END,
         CASE WHEN n IN (2, 4) THEN 'price_table' END
       FROM user_workflow_run r, generate_series(1, 5) n""",
]

AGE_DERIVED_ROWS = """
UPDATE conversations c SET updated_at = m.last
FROM (SELECT conversation_id, max(created_at) AS last FROM messages GROUP BY 1) m
WHERE m.conversation_id = c.id;
UPDATE token_usage_analytics
SET updated_at = (date + 1)::timestamp AT TIME ZONE 'UTC' - interval '1 second'
WHERE date < current_date;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import psycopg

    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        raise SystemExit("set DATABASE_URL to a PostgreSQL server (the bench makes its own db)")
    with psycopg.connect(base_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB])
        if not exists.fetchone():
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
    os.environ["DATABASE_URL"] = base_url.rsplit("/", 1)[0] + "/" + BENCH_DB

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections, transaction
    from django.utils import timezone
    from tqdm import tqdm

    from telemetry.consistency.runner import run_checks
    from telemetry.db_roles import OWNER_DB
    from telemetry.models import Organization, WorkflowRun
    from telemetry.projection import project_runs
    from telemetry.scope import all_orgs

    call_command("migrate", verbosity=0)
    # The history is made by the schema owner (bulk SQL, TRUNCATE, VACUUM); the checks run as
    # the app does, across organisations.
    owner = connections[OWNER_DB]
    with all_orgs():
        have = WorkflowRun.objects.count()
    if have != args.runs:
        org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        with owner.cursor() as cur:
            cur.execute(
                "TRUNCATE user_workflow_run, user_workflow_run_step, workflow_trace, "
                "workflow_steps, workflow_events, workflow_trace_screenshot, "
                "workflow_trace_context, workflow_trace_endpoint, llm_usage_logs, "
                "token_usage_analytics, conversations, messages, legacy_outbox, "
                "consistency_check_result CASCADE"
            )
        started = time.perf_counter()
        with tqdm(total=len(GENERATE) + 10, desc="Generating", unit="step") as bar:
            with owner.cursor() as cur:
                for statement in GENERATE:
                    cur.execute(statement, {"org": org.id, "runs": args.runs})
                    bar.update(1)
            # The legacy side comes from the real projection, 100k runs per transaction.
            with owner.cursor() as cur:
                cur.execute("SELECT run_id FROM user_workflow_run ORDER BY run_id")
                run_ids = [r[0] for r in cur.fetchall()]
            chunk = max(1, len(run_ids) // 10)
            for start in range(0, len(run_ids), chunk):
                with transaction.atomic(), all_orgs():
                    project_runs(run_ids[start : start + chunk])
                bar.update(1)
        with owner.cursor() as cur:
            # The history was written just now; date its derived rows as if it had been
            # written over the 30 days, as the projection would have stamped them.
            cur.execute(AGE_DERIVED_ROWS)
            cur.execute("VACUUM ANALYZE")
        print(f"generated {args.runs:,} runs in {time.perf_counter() - started:,.0f} s")

    def timed(since, until):
        started = time.perf_counter()
        results = run_checks(since, until)
        return time.perf_counter() - started, results

    full_times, hour_times = [], []
    for _ in range(args.rounds):
        seconds, full = timed(None, None)
        full_times.append(seconds)
        now = timezone.now()
        seconds, hour = timed(now - timezone.timedelta(hours=1), now)
        hour_times.append(seconds)
    full_s, hour_s = statistics.median(full_times), statistics.median(hour_times)
    full_rows = sum(r.rows_examined for r in full)
    hour_rows = sum(r.rows_examined for r in hour)
    print(f"\n{'check':<26} {'rows':>12} {'offenders':>10} {'ms':>8}")
    for r in full:
        print(f"{r.check_name:<26} {r.rows_examined:>12,} {r.offenders:>10,} {r.duration_ms:>8,}")
    failing = [r.check_name for r in full + hour if r.offenders and r.severity == "error"]
    print(f"\n{args.runs:,} runs, {len(full)} checks, median of {args.rounds} rounds")
    print(
        f"full suite: {full_s:8.2f} s   {full_rows / full_s:14,.0f} rows verified/s   "
        f"target 30 s: {30 / full_s:5.2f}x"
    )
    print(
        f"last hour:  {hour_s * 1000:8.1f} ms  {hour_rows / hour_s:14,.0f} rows verified/s   "
        f"target 100 ms: {0.1 / hour_s:5.2f}x"
    )
    if failing:
        raise SystemExit(f"checks failed on generated data: {failing}")


if __name__ == "__main__":
    main()
