"""Ingest benchmark: Lockstep's HTTP API in sync dual-write mode against a raw COPY.

A fixed synthetic workload (runs of 5 steps with 3 events each, two of the steps LLM calls)
is posted through the real HTTP API to gunicorn, in batches, by as many client threads as
gunicorn has workers. The
rows that Lockstep wrote to every table (consolidated and legacy) are then dumped, the tables
emptied, and exactly those rows loaded again with psycopg COPY in one transaction: the
fastest way PostgreSQL has to put the same rows in the same tables with the same indexes.
Both run in one process, alternating, several rounds; the median of each is reported.

    make bench                      # or: python bench/ingest.py --runs 2000 --rounds 3
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

TABLES = [  # parents first, so a COPY satisfies every foreign key as it goes
    "user_workflow_run",
    "user_workflow_run_step",
    "workflow_trace",
    "workflow_steps",
    "workflow_events",
    "workflow_trace_screenshot",
    "workflow_trace_context",
    "workflow_trace_endpoint",
    "llm_usage_logs",
    "token_usage_analytics",
    "conversations",
    "messages",
    "rollup_run_hourly",
    "rollup_step_hourly",
    "rollup_people_hourly",
    "run_lifecycle_event",
]
BROKER = "redis://127.0.0.1:6379/14"


def workload(count: int) -> list[dict]:
    runs = []
    for i in range(count):
        steps = []
        for n in range(1, 6):
            at = f"2025-03-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}"
            step = {
                "step_number": n,
                "node_id": f"node-{n}",
                "name": f"step {n}",
                "kind": "llm" if n in (2, 4) else "tool",
                "status": "completed",
                "started_at": f"{at}.{n * 100:03d}Z",
                "ended_at": f"{at}.{n * 100 + 50:03d}Z",
                "input": {"q": f"question {i}"},
                "output": {"a": f"answer {i}.{n}"},
                "events": [
                    {"type": t, "timestamp": f"{at}.{n * 100 + k:03d}Z", "data": {"k": k}}
                    for k, t in enumerate(("started", "progress", "finished"))
                ],
            }
            if n in (2, 4):
                step["llm"] = {
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "usage": {"prompt_tokens": 500 + i % 97, "completion_tokens": 80},
                }
            steps.append(step)
        runs.append(
            {
                "run_id": str(uuid.uuid4()),
                "workflow_id": f"wf-{i % 5}",
                "status": "completed",
                "channel": "web",
                "user_id": f"user-{i % 50}",
                "started_at": f"{steps[0]['started_at']}",
                "ended_at": steps[-1]["ended_at"],
                "context": {"correlation_id": f"c-{i}", "shard": i % 4},
                "steps": steps,
            }
        )
    return runs


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(BROKER, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def post_all(url: str, headers: dict, queue: list[bytes], failures: list[str]) -> None:
    """One client: post bodies from the shared queue until it is empty."""
    import httpx

    with httpx.Client(base_url=url, timeout=60) as http:
        while queue:
            try:
                body = queue.pop()
            except IndexError:
                return
            response = http.post("/api/v1/ingest", content=body, headers=headers)
            if response.status_code != 200:
                failures.append(response.text[:300])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=250, help="runs per request")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="gunicorn workers, one per core by default; as many client threads",
    )
    args = parser.parse_args()

    import logging

    import django

    logging.getLogger("httpx").setLevel(logging.WARNING)

    base_url = os.environ.get("DATABASE_URL")
    if base_url:  # a database of its own next to the configured one
        bench_url = base_url.rsplit("/", 1)[0] + "/lockstep_bench"
        import psycopg

        with psycopg.connect(base_url, autocommit=True) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = 'lockstep_bench'"
            ).fetchone():
                conn.execute("CREATE DATABASE lockstep_bench")
        os.environ["DATABASE_URL"] = bench_url
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from telemetry.models import ApiKey, Organization

    call_command("migrate", verbosity=0)
    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    _, raw_key = ApiKey.issue(org, name="bench")
    settings_db = connection.settings_dict
    conninfo = (
        os.environ.get("DATABASE_URL")
        or f"postgresql://{settings_db['USER']}@/{settings_db['NAME']}?host={settings_db['HOST']}"
    )

    env = {
        **os.environ,
        "DATABASE_URL": conninfo,
        "LOCKSTEP_INGEST_RATE": "1000000/min",
        "DJANGO_DEBUG": "0",
        "DATABASE_POOL_SIZE": "4",
    }
    # Production runs a Celery worker: with it the rollups are refreshed right after commit,
    # coalescing the writes to one hour (LOCKSTEP_ROLLUP_REFRESH=deferred).
    worker = None
    if redis_available():
        env["CELERY_BROKER_URL"] = BROKER
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "WARNING",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
        )
    print("rollups:", "deferred to a Celery worker" if worker else "inline (no Redis)")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-w",
            str(args.workers),
            "-b",
            f"127.0.0.1:{args.port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    import httpx
    import orjson
    import psycopg

    try:
        url = f"http://127.0.0.1:{args.port}"
        for _ in range(100):
            try:
                httpx.get(f"{url}/api/schema/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"}
        # Warm up every worker (imports, connection pool, price table) before timing.
        warmup = [orjson.dumps({"runs": workload(20)}) for _ in range(args.workers * 2)]
        post_all(url, headers, warmup, [])
        lockstep_times, copy_times, rows_per_round = [], [], 0
        with psycopg.connect(conninfo) as pg:
            for round_number in range(1, args.rounds + 1):
                pg.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
                pg.commit()
                runs = workload(args.runs)
                bodies = [
                    orjson.dumps({"runs": runs[i : i + args.batch]})
                    for i in range(0, len(runs), args.batch)
                ]
                queue, failures = list(bodies), []
                started = time.perf_counter()
                threads = [
                    threading.Thread(target=post_all, args=(url, headers, queue, failures))
                    for _ in range(args.workers)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                lockstep_times.append(time.perf_counter() - started)
                if failures:
                    raise SystemExit(f"ingest failed: {failures[0]}")
                while pg.execute("SELECT count(*) FROM rollup_dirty_hour").fetchone()[0]:
                    time.sleep(0.1)  # let the refresh finish: its rows are copied too
                pg.commit()

                dumps = {}
                for table in TABLES:
                    with pg.cursor().copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:
                        dumps[table] = b"".join(bytes(chunk) for chunk in copy)
                rows_per_round = sum(
                    pg.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES
                )
                pg.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
                pg.commit()

                started = time.perf_counter()
                for table in TABLES:
                    with pg.cursor().copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
                        copy.write(dumps[table])
                pg.commit()
                copy_times.append(time.perf_counter() - started)
                print(
                    f"round {round_number}: lockstep {args.runs / lockstep_times[-1]:8,.0f} runs/s"
                    f"   raw COPY {args.runs / copy_times[-1]:8,.0f} runs/s",
                    flush=True,
                )
            # COPY with explicit ids leaves identity sequences behind; leave the tables empty.
            pg.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
            pg.commit()
    finally:
        server.terminate()
        server.wait()
        if worker:
            worker.terminate()
            worker.wait()

    lockstep = args.runs / statistics.median(lockstep_times)
    raw_copy = args.runs / statistics.median(copy_times)
    print(
        f"\nworkload: {args.runs:,} runs x 5 steps x 3 events, {rows_per_round:,} rows in "
        f"{len(TABLES)} tables per round, batches of {args.batch}, {args.workers} workers"
    )
    print(f"lockstep HTTP ingest (sync dual write): {lockstep:10,.0f} runs/s")
    print(f"raw psycopg COPY of the same rows:      {raw_copy:10,.0f} runs/s")
    print(f"ratio lockstep / raw COPY:              {lockstep / raw_copy:10.2f}  (target >= 0.50)")


if __name__ == "__main__":
    main()
