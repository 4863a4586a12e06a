"""The async mode with a real Celery worker against Redis: ingest over HTTP, the worker drains,
and a worker killed in the middle of a drain loses nothing and counts nothing twice."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from telemetry.consistency.runner import run_checks
from telemetry.models import LegacyOutbox, LlmUsageLog, TokenUsageAnalytics, WorkflowTrace
from tests.conftest import TEST_BROKER_URL as BROKER
from tests.conftest import full_run

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def redis_available() -> bool:
    import redis

    try:
        return redis.Redis.from_url(BROKER, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.fixture
def broker(settings):
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {BROKER}")
        pytest.skip(f"Redis is not reachable at {BROKER}")
    db = connection.settings_dict
    if not db["HOST"] or db["HOST"].startswith("/"):
        pytest.skip("the worker test needs DATABASE_URL on TCP (the embedded server is a socket)")
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    settings.LOCKSTEP_WRITE_MODE = "async"
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


def database_url() -> str:
    db = connection.settings_dict
    return (
        f"postgresql://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )


class Worker:
    """A real `celery worker` process on the test database."""

    def __init__(self):
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": BROKER,
            "LOCKSTEP_WRITE_MODE": "async",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "solo",
                "--concurrency",
                "1",
                "--loglevel",
                "WARNING",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=Path(settings.BASE_DIR),
            env=env,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def post(live_server, key: str, *runs: dict) -> None:
    import httpx

    response = httpx.post(
        f"{live_server.url}/api/v1/ingest",
        content=orjson.dumps({"runs": runs}),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def failing_checks() -> list[str]:
    return [r.check_name for r in run_checks() if r.severity == "error" and not r.passed]


def test_a_worker_drains_what_ingest_committed(broker, live_server, api_key):
    worker = Worker()
    try:
        runs = [full_run() for _ in range(20)]
        post(live_server, api_key, *runs[:10])
        post(live_server, api_key, *runs[10:])
        wait_for(lambda: not LegacyOutbox.objects.exists() and WorkflowTrace.objects.count() == 20)
        assert LlmUsageLog.objects.count() == 40
        assert TokenUsageAnalytics.objects.get(model="gpt-4o").request_count == 20
        assert failing_checks() == []
    finally:
        worker.stop()


def test_a_worker_killed_mid_drain_loses_nothing_and_counts_nothing_twice(
    broker, live_server, api_key
):
    import psycopg

    run = full_run()
    # Another session holds workflow_trace, so the worker's drain stops inside its transaction.
    blocker = psycopg.connect(database_url())
    blocker.execute("LOCK TABLE workflow_trace IN SHARE ROW EXCLUSIVE MODE")
    first = Worker()
    try:
        post(live_server, api_key, run)

        def drain_is_waiting() -> bool:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_locks WHERE relation = "
                    "'workflow_trace'::regclass AND NOT granted"
                )
                return cur.fetchone()[0] > 0

        wait_for(drain_is_waiting)
        first.kill()
    finally:
        first.stop()
        blocker.rollback()
        blocker.close()
    assert LegacyOutbox.objects.count() == 1  # the killed drain committed nothing
    assert WorkflowTrace.objects.count() == 0
    second = Worker()
    try:
        from telemetry.tasks import drain_legacy_outbox

        drain_legacy_outbox.delay()
        drain_legacy_outbox.delay()  # delivered twice
        wait_for(lambda: not LegacyOutbox.objects.exists() and WorkflowTrace.objects.exists())
        time.sleep(1)  # let the second delivery finish too
        assert LlmUsageLog.objects.count() == 2
        assert TokenUsageAnalytics.objects.get(model="gpt-4o").request_count == 1
        assert failing_checks() == []
    finally:
        second.stop()
