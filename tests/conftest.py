import os
import uuid
from collections.abc import Callable

import orjson
import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connections

from telemetry.db_roles import OWNER_DB
from telemetry.models import ApiKey, Organization
from telemetry.scope import all_orgs

APP_ROLE = settings.LOCKSTEP_DB_ROLE

TEST_BROKER_URL = os.environ.get("LOCKSTEP_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session", autouse=True)
def _celery_broker_for_worker_tests():
    """Tasks run in-process (eager) in tests, but Celery builds its producer pool on first use:
    point it at the test broker from the start, so the worker tests can turn eager off."""
    from config.celery import app

    app.conf.broker_url = TEST_BROKER_URL


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    """The test database is created and migrated by the schema owner, as in production (which
    also creates the app's roles and grants); the tests then connect as the app's role, so
    row-level security is on in every test."""
    owner, app = connections[OWNER_DB], connections["default"]
    with django_db_blocker.unblock():
        real_name = owner.settings_dict["NAME"]
        test_name = owner.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        app.close()
        app.settings_dict["NAME"] = test_name
        with owner.cursor() as cur:  # the test runner's flush truncates; the app never does
            cur.execute(f"GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    yield
    with django_db_blocker.unblock():
        # End stray sessions (the live server's request threads) so the database can go.
        with owner.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        app.close()
        if hasattr(app, "close_pool"):
            app.close_pool()
        owner.creation.destroy_test_db(real_name, verbosity=0)


@pytest.fixture(autouse=True)
def _operator_unless_app_role(request):
    """Test code reads and writes as an operator (`all_orgs`), so it can set up and inspect any
    organisation's rows; requests, tasks and commands under test set their own scope. Tests
    marked `app_role` run as the app's role with no organisation set."""
    uses_db = request.node.get_closest_marker("django_db") or {
        "db",
        "transactional_db",
        "live_server",
    }.intersection(request.fixturenames)
    if not uses_db or request.node.get_closest_marker("app_role"):
        yield
        return
    request.getfixturevalue("_django_db_helper")
    with all_orgs():
        yield


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()


@pytest.fixture
def org(db) -> Organization:
    return Organization.objects.create(slug="acme", name="Acme")


@pytest.fixture
def other_org(db) -> Organization:
    return Organization.objects.create(slug="globex", name="Globex")


@pytest.fixture
def api_key(org) -> str:
    return ApiKey.issue(org)[1]


@pytest.fixture
def other_api_key(other_org) -> str:
    return ApiKey.issue(other_org)[1]


@pytest.fixture
def ingest(client, api_key) -> Callable:
    """POST runs to the ingest API with the org's key; returns the response."""

    def post(*runs: dict, key: str | None = None, body: bytes | None = None, **headers):
        data = body if body is not None else orjson.dumps({"runs": list(runs)})
        return client.post(
            "/api/v1/ingest",
            data=data,
            content_type="application/json",
            headers={"Authorization": f"Bearer {key or api_key}", **headers},
        )

    return post


@pytest.fixture
def get_api(client, api_key) -> Callable:
    def get(path: str, key: str | None = None, **params):
        return client.get(path, params, headers={"Authorization": f"Bearer {key or api_key}"})

    return get


def new_run_id() -> str:
    return str(uuid.uuid4())


def full_run(run_id: str | None = None, **overrides) -> dict:
    """A complete run: an LLM step with events, a browser step with a screenshot, a tool step."""
    run = {
        "run_id": run_id or new_run_id(),
        "workflow_id": "support-triage",
        "status": "completed",
        "channel": "web",
        "external_id": "ticket-42",
        "user_id": "user-7",
        "conversation_id": "conv-1",
        "started_at": "2025-01-14T10:30:00Z",
        "ended_at": "2025-01-14T10:30:09.500Z",
        "context": {"correlation_id": "xyz789", "retry_attempt": 0},
        "endpoints_used": ["/api/tickets", "/api/kb/search"],
        "config_snapshot": {"temperature": 0.2},
        "tier": 2,
        "tier_reason": "paying customer",
        "steps": [
            {
                "step_number": 1,
                "node_id": "classify",
                "name": "classify",
                "status": "completed",
                "started_at": "2025-01-14T10:30:01Z",
                "ended_at": "2025-01-14T10:30:03Z",
                "input": {"ticket": "My invoice is wrong"},
                "output": {"label": "billing"},
                "events": [
                    {"type": "llm_request", "timestamp": "2025-01-14T10:30:01Z", "data": {"n": 1}},
                    {"type": "llm_response", "timestamp": "2025-01-14T10:30:03Z", "data": {}},
                ],
                "llm": {
                    "provider": "openai",
                    "model": "gpt-4o",
                    "usage": {
                        "prompt_tokens": 1200,
                        "completion_tokens": 300,
                        "total_tokens": 1500,
                        "prompt_tokens_details": {"cached_tokens": 200},
                    },
                    "prompt": "Classify this ticket",
                    "response": "billing",
                    "temperature": 0.2,
                    "time_to_first_token_ms": 240,
                },
            },
            {
                "step_number": 2,
                "node_id": "open_invoice",
                "kind": "browser",
                "status": "completed",
                "started_at": "2025-01-14T10:30:03Z",
                "ended_at": "2025-01-14T10:30:06Z",
                "events": [{"type": "page_loaded", "data": {"url": "https://example.com"}}],
                "screenshots": [
                    {
                        "url": "s3://bucket/1.png",
                        "thumbnail_url": "s3://bucket/1.thumb.png",
                        "timestamp": "2025-01-14T10:30:05Z",
                        "action": "click_submit",
                        "selector": "#submit-button",
                        "element_found": True,
                        "confidence": 0.95,
                    }
                ],
            },
            {
                "step_number": 3,
                "node_id": "draft_reply",
                "status": "completed",
                "started_at": "2025-01-14T10:30:06Z",
                "ended_at": "2025-01-14T10:30:09Z",
                "llm": {
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "usage": {
                        "input_tokens": 800,
                        "output_tokens": 400,
                        "cache_read_input_tokens": 1000,
                        "cache_creation_input_tokens": 0,
                    },
                    "response": "Sorry about that invoice...",
                },
            },
        ],
    }
    run.update(overrides)
    return run


# Tests that change the schema to make writes fail: the schema owner makes the change (the
# app's role cannot), so it commits and these tests run outside a test transaction.
CHANGES_SCHEMA = pytest.mark.django_db(transaction=True, databases=["default", OWNER_DB])


@pytest.fixture
def refuse_evil_traces() -> Callable[[bool], None]:
    """refuse(True) makes writing a legacy trace of workflow 'evil' fail; refuse(False) and
    the end of the test undo it."""

    def refuse(on: bool = True) -> None:
        with connections[OWNER_DB].cursor() as cur:
            cur.execute("ALTER TABLE workflow_trace DROP CONSTRAINT IF EXISTS refuse_evil")
            if on:
                cur.execute(
                    "ALTER TABLE workflow_trace ADD CONSTRAINT refuse_evil "
                    "CHECK (workflow_id IS DISTINCT FROM 'evil')"
                )

    refuse(True)
    yield refuse
    refuse(False)


@pytest.fixture
def tasks_queued_not_run():
    """Celery tasks go to the test broker, where no worker takes them (as with a worker that
    is down): tests drive the drain themselves."""
    import redis

    from config.celery import app

    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True
    redis.Redis.from_url(TEST_BROKER_URL).flushdb()
