import os
import uuid
from collections.abc import Callable

import orjson
import pytest
from django.core.cache import cache
from django.db import connections

from telemetry.models import ApiKey, Organization

TEST_BROKER_URL = os.environ.get("LOCKSTEP_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session", autouse=True)
def _celery_broker_for_worker_tests():
    """Tasks run in-process (eager) in tests, but Celery builds its producer pool on first use:
    point it at the test broker from the start, so the worker tests can turn eager off."""
    from config.celery import app

    app.conf.broker_url = TEST_BROKER_URL


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """End stray sessions before the test database is dropped: connections that the live
    server's request threads opened would otherwise keep it open."""
    yield
    with django_db_blocker.unblock(), connections["default"].cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


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
