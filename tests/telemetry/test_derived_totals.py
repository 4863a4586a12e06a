"""Daily token analytics and conversation totals stay exact under replays, updates and
concurrent writers: they are recomputed for the keys a write touched, never incremented."""

import copy
import threading
from datetime import date

import orjson
import pytest
from django.db import connection

from telemetry.models import Conversation, LlmUsageLog, TokenUsageAnalytics
from tests.conftest import full_run


def analytics_equal_usage_logs() -> None:
    """Every analytics row equals the sum of its usage logs, and every key has a row."""
    with connection.cursor() as cur:
        cur.execute("""
            SELECT count(*) FROM (
              SELECT org_id, user_id, (created_at AT TIME ZONE 'UTC')::date AS date, request_type,
                     model, count(*) AS n, sum(total_tokens) AS tokens,
                     coalesce(sum(cost), 0) AS cost
              FROM llm_usage_logs GROUP BY 1, 2, 3, 4, 5
            ) u FULL JOIN token_usage_analytics a
              ON a.org_id = u.org_id AND a.user_id IS NOT DISTINCT FROM u.user_id
             AND a.date = u.date AND a.request_type = u.request_type
             AND a.model IS NOT DISTINCT FROM u.model
            WHERE a.id IS NULL OR u.n IS NULL OR a.request_count <> u.n
               OR a.total_tokens_used <> u.tokens OR a.total_cost <> u.cost""")
        assert cur.fetchone()[0] == 0


def conversation_totals_equal_messages() -> None:
    with connection.cursor() as cur:
        cur.execute("""
            SELECT count(*) FROM conversations c
            LEFT JOIN (SELECT conversation_id, count(*) n, sum(total_tokens) t,
                              coalesce(sum(cost), 0) k FROM messages GROUP BY 1) m
              ON m.conversation_id = c.id
            WHERE c.message_count <> coalesce(m.n, 0) OR c.total_tokens <> coalesce(m.t, 0)
               OR c.total_cost <> coalesce(m.k, 0)""")
        assert cur.fetchone()[0] == 0


def test_replays_count_once(ingest):
    runs = [full_run() for _ in range(3)]
    ingest(*runs)
    ingest(*runs)
    ingest(runs[0])
    row = TokenUsageAnalytics.objects.get(model="gpt-4o")
    assert (row.date, row.request_count, row.total_tokens_used) == (date(2025, 1, 14), 3, 4500)
    conversation = Conversation.objects.get()
    assert conversation.message_count == 6
    analytics_equal_usage_logs()
    conversation_totals_equal_messages()


def test_changing_a_calls_model_moves_its_tokens_to_the_new_key(ingest):
    run = full_run()
    ingest(run)
    step = copy.deepcopy(run["steps"][0])
    step["llm"]["model"] = "gpt-4o-mini"
    ingest({"run_id": run["run_id"], "steps": [step]})
    assert not TokenUsageAnalytics.objects.filter(model="gpt-4o").exists()
    assert TokenUsageAnalytics.objects.get(model="gpt-4o-mini").total_tokens_used == 1500
    analytics_equal_usage_logs()


def test_moving_a_run_to_another_day_and_user_recomputes_both_keys(ingest):
    runs = [full_run(), full_run()]
    ingest(*runs)
    moved = copy.deepcopy(runs[0])
    moved["user_id"] = "user-8"
    for step in moved["steps"]:
        step["started_at"] = step["started_at"].replace("2025-01-14", "2025-01-15")
        step["ended_at"] = step["ended_at"].replace("2025-01-14", "2025-01-15")
    moved["ended_at"] = "2025-01-15T10:30:09Z"
    ingest(moved)
    old = TokenUsageAnalytics.objects.get(model="gpt-4o", user_id="user-7")
    new = TokenUsageAnalytics.objects.get(model="gpt-4o", user_id="user-8")
    assert (old.date, old.request_count) == (date(2025, 1, 14), 1)
    assert (new.date, new.request_count) == (date(2025, 1, 15), 1)
    analytics_equal_usage_logs()


def test_legacy_rows_from_older_code_are_included_in_the_day_they_belong_to(ingest, org):
    LlmUsageLog.objects.create(
        org_id=org.id,
        user_id="user-7",
        request_type="support-triage",
        model="gpt-4o",
        prompt_tokens=1,
        completion_tokens=1,
        total_tokens=2,
        cost=0,
        created_at="2025-01-14T08:00:00Z",
    )
    ingest(full_run())
    row = TokenUsageAnalytics.objects.get(model="gpt-4o")
    assert (row.request_count, row.total_tokens_used) == (2, 1502)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_the_same_day_and_conversation_stay_exact(org, api_key, live_server):
    """Eight clients at once over real HTTP, writing new runs into one shared analytics day
    and one shared conversation, and replaying each other's runs."""
    import httpx

    rounds, workers = 6, 8
    runs = [full_run() for _ in range(rounds * workers * 2)]
    for i, run in enumerate(runs):
        if i % 2:
            del run["conversation_id"]
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    errors = []

    def send(http: httpx.Client, batch: list[dict]) -> None:
        response = http.post(
            "/api/v1/ingest", content=orjson.dumps({"runs": batch}), headers=headers
        )
        if response.status_code != 200:
            errors.append(response.text)

    with httpx.Client(base_url=live_server.url) as http:
        send(http, runs[:1])  # the conversation exists before the race starts

    def client(worker: int) -> None:
        with httpx.Client(base_url=live_server.url) as http:
            for r in range(rounds):
                mine = runs[(r * workers + worker) * 2 : (r * workers + worker) * 2 + 2]
                send(http, mine + [runs[(r * workers + worker + 1) % len(runs)]])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    row = TokenUsageAnalytics.objects.get(model="gpt-4o")
    assert (row.request_count, row.total_tokens_used) == (len(runs), len(runs) * 1500)
    assert Conversation.objects.get().message_count == len(runs)  # half the runs, 2 calls each
    analytics_equal_usage_logs()
    conversation_totals_equal_messages()
