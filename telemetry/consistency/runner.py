"""Run the registered checks and store their results."""

import time
from collections.abc import Callable, Iterable
from datetime import datetime

from django.db import connection

from telemetry import webhooks
from telemetry.consistency.checks import CHECKS, Check
from telemetry.models import CheckResult
from telemetry.scope import all_orgs

SAMPLE_SIZE = 20


def _materialized(check: Check) -> str:
    return "MATERIALIZED" if check.materialize_scope else "NOT MATERIALIZED"


@all_orgs()
def run_check(
    check: Check, since: datetime | None, until: datetime | None, save: bool = True
) -> CheckResult:
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            f"""
            WITH scope AS {_materialized(check)} ({check.scope}),
                 offenders AS ({check.offenders})
            SELECT (SELECT count(*) FROM scope),
                   (SELECT count(*) FROM offenders),
                   (SELECT coalesce(array_agg(id::text), '{{}}')
                      FROM (SELECT * FROM offenders LIMIT {SAMPLE_SIZE}) AS sample(id))
            """,
            {"since": since, "until": until},
        )
        examined, offenders, sample = cur.fetchone()
    result = CheckResult(
        check_name=check.name,
        severity=check.severity,
        window_start=since,
        window_end=until,
        rows_examined=examined,
        offenders=offenders,
        sample_ids=sorted(sample),
        duration_ms=round((time.perf_counter() - started) * 1000),
    )
    if save:
        result.save()
    return result


@all_orgs()
def offender_ids(check: Check, since: datetime | None, until: datetime | None) -> list[str]:
    """Every offender of a check (not just the sample), for repair."""
    with connection.cursor() as cur:
        cur.execute(
            f"WITH scope AS {_materialized(check)} ({check.scope}) SELECT DISTINCT id::text "
            f"FROM ({check.offenders}) AS offenders(id) ORDER BY 1",
            {"since": since, "until": until},
        )
        return [row[0] for row in cur.fetchall()]


@all_orgs()
def run_checks(
    since: datetime | None = None,
    until: datetime | None = None,
    checks: Iterable[Check] = CHECKS,
    progress: Callable[[Check], None] = lambda check: None,
) -> list[CheckResult]:
    """Run checks over runs written in [since, until) (all history when both are None)."""
    results = []
    for check in checks:
        results.append(run_check(check, since, until, save=False))
        progress(check)
    results = CheckResult.objects.bulk_create(results)  # one write for the whole run
    webhooks.record_check_failures(results)
    return results
