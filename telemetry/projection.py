"""consolidated run -> legacy rows: the one place that knows both shapes.

`project_runs` makes the legacy rows of the given runs equal to what their consolidated rows
say, whatever was there before (for a run_id with no consolidated run: no legacy rows), so it
serves ingest, the outbox drain, repair and tests alike and running it twice changes nothing.
Per-run rows are replaced (traces and steps are updated in place so their ids stay stable for
old readers); the derived totals in
`token_usage_analytics` and `conversations` are then recomputed from their base rows for
exactly the keys the runs touched before and after, never incremented.
"""

from collections.abc import Sequence
from uuid import UUID

import orjson
from django.db import connection

from telemetry import locks

# A usage row's time, and so its analytics day, comes from the step, else from the run.
USAGE_TIME = "coalesce(s.started_at, s.ended_at, r.started_at, r.created_at)"
MESSAGE_TIME = "coalesce(s.ended_at, s.started_at, r.started_at, r.created_at)"

CLEAR_PER_RUN_ROWS = """
WITH
  events AS (DELETE FROM workflow_events WHERE run_id = ANY(%(ids)s)),
  shots AS (DELETE FROM workflow_trace_screenshot WHERE run_id = ANY(%(ids)s)),
  context AS (DELETE FROM workflow_trace_context WHERE run_id = ANY(%(ids)s)),
  endpoints AS (DELETE FROM workflow_trace_endpoint WHERE run_id = ANY(%(ids)s)),
  usage AS (
    DELETE FROM llm_usage_logs WHERE run_id = ANY(%(ids)s)
    RETURNING org_id, user_id, (created_at AT TIME ZONE 'UTC')::date AS date, request_type, model
  ),
  messages AS (DELETE FROM messages WHERE run_id = ANY(%(ids)s) RETURNING conversation_id)
SELECT
  (SELECT coalesce(jsonb_agg(DISTINCT to_jsonb(usage)), '[]') FROM usage),
  (SELECT coalesce(array_agg(DISTINCT conversation_id), '{}') FROM messages)
"""

DELETE_VANISHED_STEPS = """
DELETE FROM workflow_steps w
WHERE w.run_id = ANY(%(ids)s)
  AND NOT EXISTS (SELECT 1 FROM user_workflow_run_step s
                  WHERE s.run_id = w.run_id AND s.step_number = w.step_number)
"""

# A run_id with no consolidated run projects to no legacy rows: this is how orphans go.
DELETE_VANISHED_TRACES = """
DELETE FROM workflow_trace t
WHERE t.run_id = ANY(%(ids)s)
  AND NOT EXISTS (SELECT 1 FROM user_workflow_run r WHERE r.run_id = t.run_id)
"""

UPSERT_TRACES = """
INSERT INTO workflow_trace AS t (org_id, run_id, workflow_id, status, channel, external_id,
    user_id, started_at, ended_at, duration_ms, error_message, created_at, updated_at)
SELECT org_id, run_id, workflow_id, status, channel, external_id,
    user_id, started_at, ended_at, duration_ms, error_message, created_at, updated_at
FROM user_workflow_run WHERE run_id = ANY(%(ids)s)
ORDER BY run_id
ON CONFLICT (run_id) WHERE run_id IS NOT NULL DO UPDATE SET
    org_id = EXCLUDED.org_id, workflow_id = EXCLUDED.workflow_id, status = EXCLUDED.status,
    channel = EXCLUDED.channel, external_id = EXCLUDED.external_id, user_id = EXCLUDED.user_id,
    started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at,
    duration_ms = EXCLUDED.duration_ms, error_message = EXCLUDED.error_message,
    created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at
"""

UPSERT_STEPS = """
INSERT INTO workflow_steps AS w (trace_id, run_id, step_number, node_id, name, step_type,
    status, retry_count, started_at, ended_at, duration_ms, input_data, output_data,
    error_message)
SELECT t.trace_id, s.run_id, s.step_number, s.node_id, s.name, s.kind,
    s.status, s.retry_count, s.started_at, s.ended_at, s.duration_ms, s.input_data,
    s.output_data, s.error_message
FROM user_workflow_run_step s JOIN workflow_trace t ON t.run_id = s.run_id
WHERE s.run_id = ANY(%(ids)s)
ORDER BY s.run_id, s.step_number
ON CONFLICT (run_id, step_number) WHERE run_id IS NOT NULL DO UPDATE SET
    trace_id = EXCLUDED.trace_id, node_id = EXCLUDED.node_id, name = EXCLUDED.name,
    step_type = EXCLUDED.step_type, status = EXCLUDED.status,
    retry_count = EXCLUDED.retry_count, started_at = EXCLUDED.started_at,
    ended_at = EXCLUDED.ended_at, duration_ms = EXCLUDED.duration_ms,
    input_data = EXCLUDED.input_data, output_data = EXCLUDED.output_data,
    error_message = EXCLUDED.error_message
"""

INSERT_EVENTS = """
INSERT INTO workflow_events (trace_id, step_id, run_id, step_number, position, event_type,
    event_timestamp, event_data)
SELECT w.trace_id, w.step_id, s.run_id, s.step_number, e.position, e.value->>'type',
    (e.value->>'timestamp')::timestamptz, coalesce(e.value->'data', '{}')
FROM user_workflow_run_step s
JOIN workflow_steps w ON w.run_id = s.run_id AND w.step_number = s.step_number
CROSS JOIN LATERAL jsonb_array_elements(s.events) WITH ORDINALITY AS e(value, position)
WHERE s.run_id = ANY(%(ids)s)
"""

INSERT_SCREENSHOTS = """
INSERT INTO workflow_trace_screenshot (trace_id, step_id, run_id, step_number, position, url,
    thumbnail_url, taken_at, action, selector, element_found, confidence)
SELECT w.trace_id, w.step_id, s.run_id, s.step_number, e.position, e.value->>'url',
    e.value->>'thumbnail_url', (e.value->>'timestamp')::timestamptz, e.value->>'action',
    e.value->>'selector', (e.value->>'element_found')::boolean,
    (e.value->>'confidence')::float8
FROM user_workflow_run_step s
JOIN workflow_steps w ON w.run_id = s.run_id AND w.step_number = s.step_number
CROSS JOIN LATERAL jsonb_array_elements(s.screenshots) WITH ORDINALITY AS e(value, position)
WHERE s.run_id = ANY(%(ids)s)
"""

INSERT_CONTEXT = """
INSERT INTO workflow_trace_context (trace_id, run_id, context_key, context_value)
SELECT t.trace_id, r.run_id, c.key, c.value
FROM user_workflow_run r
JOIN workflow_trace t ON t.run_id = r.run_id
CROSS JOIN LATERAL jsonb_each(r.context) AS c
WHERE r.run_id = ANY(%(ids)s)
"""

INSERT_ENDPOINTS = """
INSERT INTO workflow_trace_endpoint (trace_id, run_id, position, endpoint)
SELECT t.trace_id, r.run_id, e.position, e.value
FROM user_workflow_run r
JOIN workflow_trace t ON t.run_id = r.run_id
CROSS JOIN LATERAL jsonb_array_elements_text(r.endpoints_used) WITH ORDINALITY
  AS e(value, position)
WHERE r.run_id = ANY(%(ids)s)
"""

INSERT_USAGE = f"""
WITH inserted AS (
  INSERT INTO llm_usage_logs (org_id, user_id, run_id, step_number, provider, model,
      request_type, prompt_tokens, completion_tokens, total_tokens, cached_tokens,
      reasoning_tokens, cost, duration_ms, success, created_at)
  SELECT r.org_id, r.user_id, s.run_id, s.step_number, s.llm_provider, s.llm_model,
      coalesce(r.workflow_id, 'unknown'), s.input_tokens, s.output_tokens, s.total_tokens,
      s.cached_input_tokens, s.reasoning_tokens, s.cost_usd, s.duration_ms,
      s.status <> 'failed', {USAGE_TIME}
  FROM user_workflow_run_step s JOIN user_workflow_run r ON r.run_id = s.run_id
  WHERE s.run_id = ANY(%(ids)s) AND s.llm_model IS NOT NULL
  RETURNING org_id, user_id, (created_at AT TIME ZONE 'UTC')::date AS date, request_type, model
)
SELECT coalesce(jsonb_agg(DISTINCT to_jsonb(inserted)), '[]') FROM inserted
"""

INSERT_CONVERSATIONS = """
INSERT INTO conversations (org_id, conversation_id, user_id, title, created_at, updated_at)
SELECT DISTINCT ON (org_id, conversation_id) org_id, conversation_id, user_id,
    conversation_id, coalesce(started_at, created_at), now()
FROM user_workflow_run
WHERE run_id = ANY(%(ids)s) AND conversation_id IS NOT NULL
ORDER BY org_id, conversation_id, started_at
ON CONFLICT (org_id, conversation_id) DO NOTHING
"""

INSERT_MESSAGES = f"""
WITH inserted AS (
  INSERT INTO messages (conversation_id, org_id, run_id, step_number, role, content,
      prompt_tokens, completion_tokens, total_tokens, cost, provider_used, model_used,
      response_time_ms, created_at, extra_metadata)
  SELECT c.id, r.org_id, s.run_id, s.step_number, 'assistant', coalesce(s.llm_response, ''),
      s.input_tokens, s.output_tokens, s.total_tokens, s.cost_usd, s.llm_provider,
      s.llm_model, s.duration_ms, {MESSAGE_TIME},
      jsonb_build_object('workflow_id', r.workflow_id, 'node_id', s.node_id)
  FROM user_workflow_run_step s
  JOIN user_workflow_run r ON r.run_id = s.run_id
  JOIN conversations c ON c.org_id = r.org_id AND c.conversation_id = r.conversation_id
  WHERE s.run_id = ANY(%(ids)s) AND s.llm_model IS NOT NULL
  RETURNING conversation_id
)
SELECT coalesce(array_agg(DISTINCT conversation_id), '{{}}') FROM inserted
"""

ANALYTICS_KEYS = """
  keys AS (
    SELECT DISTINCT * FROM jsonb_to_recordset(%(keys)s::jsonb)
      AS k(org_id uuid, user_id text, date date, request_type text, model text)
  )
"""

RECOMPUTE_ANALYTICS = f"""
WITH {ANALYTICS_KEYS}
INSERT INTO token_usage_analytics AS a (org_id, user_id, date, request_type, model,
    request_count, prompt_tokens, completion_tokens, total_tokens_used, total_cost, updated_at)
SELECT k.org_id, k.user_id, k.date, k.request_type, k.model, count(*),
    coalesce(sum(l.prompt_tokens), 0), coalesce(sum(l.completion_tokens), 0),
    coalesce(sum(l.total_tokens), 0), coalesce(sum(l.cost), 0), now()
FROM keys k
JOIN llm_usage_logs l
  ON l.org_id = k.org_id
 AND l.user_id IS NOT DISTINCT FROM k.user_id
 AND l.request_type = k.request_type
 AND l.model IS NOT DISTINCT FROM k.model
 AND l.created_at >= (k.date::timestamp AT TIME ZONE 'UTC')
 AND l.created_at < ((k.date + 1)::timestamp AT TIME ZONE 'UTC')
GROUP BY k.org_id, k.user_id, k.date, k.request_type, k.model
ORDER BY 1, 2, 3, 4, 5
ON CONFLICT (org_id, user_id, date, request_type, model) DO UPDATE SET
    request_count = EXCLUDED.request_count, prompt_tokens = EXCLUDED.prompt_tokens,
    completion_tokens = EXCLUDED.completion_tokens,
    total_tokens_used = EXCLUDED.total_tokens_used, total_cost = EXCLUDED.total_cost,
    updated_at = EXCLUDED.updated_at
"""

DELETE_EMPTY_ANALYTICS = f"""
WITH {ANALYTICS_KEYS}
DELETE FROM token_usage_analytics a USING keys k
WHERE a.org_id = k.org_id AND a.user_id IS NOT DISTINCT FROM k.user_id AND a.date = k.date
  AND a.request_type = k.request_type AND a.model IS NOT DISTINCT FROM k.model
  AND NOT EXISTS (
    SELECT 1 FROM llm_usage_logs l
    WHERE l.org_id = k.org_id AND l.user_id IS NOT DISTINCT FROM k.user_id
      AND l.request_type = k.request_type AND l.model IS NOT DISTINCT FROM k.model
      AND l.created_at >= (k.date::timestamp AT TIME ZONE 'UTC')
      AND l.created_at < ((k.date + 1)::timestamp AT TIME ZONE 'UTC'))
"""

LOCK_CONVERSATIONS = """
SELECT count(*) FROM (
  SELECT id FROM conversations WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE
) locked
"""

RECOMPUTE_CONVERSATIONS = """
UPDATE conversations c SET
    (message_count, total_tokens, total_cost) = (
        SELECT count(*), coalesce(sum(m.total_tokens), 0), coalesce(sum(m.cost), 0)
        FROM messages m WHERE m.conversation_id = c.id),
    updated_at = now()
WHERE c.id = ANY(%(ids)s)
"""


def project_runs(run_ids: Sequence[UUID]) -> None:
    """Make the legacy rows of these runs equal to their consolidated rows.

    Call inside a transaction that holds the runs' locks (`locks.RUNS`), as ingest does.
    """
    if not run_ids:
        return
    ids = {"ids": list(run_ids)}
    with connection.cursor() as cur:
        cur.execute(CLEAR_PER_RUN_ROWS, ids)
        old_days, old_conversations = cur.fetchone()
        cur.execute(DELETE_VANISHED_STEPS, ids)
        cur.execute(DELETE_VANISHED_TRACES, ids)
        cur.execute(UPSERT_TRACES, ids)
        cur.execute(UPSERT_STEPS, ids)
        for statement in (INSERT_EVENTS, INSERT_SCREENSHOTS, INSERT_CONTEXT, INSERT_ENDPOINTS):
            cur.execute(statement, ids)
        cur.execute(INSERT_USAGE, ids)
        (new_days,) = cur.fetchone()
        cur.execute(INSERT_CONVERSATIONS, ids)
        cur.execute(INSERT_MESSAGES, ids)
        (new_conversations,) = cur.fetchone()

    recompute_token_analytics(_json_list(old_days) + _json_list(new_days))
    recompute_conversations(set(old_conversations) | set(new_conversations))


def _json_list(value: str | list) -> list:
    return orjson.loads(value) if isinstance(value, str) else value


def recompute_token_analytics(keys: list[dict]) -> None:
    """Recompute `token_usage_analytics` rows for these (org, user, day, request type, model)
    keys from `llm_usage_logs`; rows whose usage is gone are removed."""
    if not keys:
        return
    locks.lock_keys(
        locks.ANALYTICS_DAYS,
        (
            f"{k['org_id']}|{k['user_id']}|{k['date']}|{k['request_type']}|{k['model']}"
            for k in keys
        ),
    )
    params = {"keys": orjson.dumps(keys).decode()}
    with connection.cursor() as cur:
        cur.execute(RECOMPUTE_ANALYTICS, params)
        cur.execute(DELETE_EMPTY_ANALYTICS, params)


def recompute_conversations(conversation_ids: set[int]) -> None:
    """Recompute message count, tokens and cost of these conversations from their messages."""
    if not conversation_ids:
        return
    params = {"ids": sorted(conversation_ids)}
    with connection.cursor() as cur:
        cur.execute(LOCK_CONVERSATIONS, params)
        cur.execute(RECOMPUTE_CONVERSATIONS, params)
