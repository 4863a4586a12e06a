"""Bring offenders back to equal from the consolidated source of truth.

Work is done in chunks, each in its own transaction holding the runs' locks, so a repair
can be interrupted at any point and run again: every step is idempotent.
"""

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from telemetry.consistency.checks import Check
from telemetry.consistency.runner import offender_ids, run_check
from telemetry.models import CheckResult, Conversation, CutoverState
from telemetry.outbox import project_and_settle
from telemetry.projection import recompute_conversations, recompute_token_analytics
from telemetry.rollups import recompute_rollups
from telemetry.scope import all_orgs

CHUNK = 500


def _chunks(items: Sequence, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


@all_orgs()
def reproject_runs(
    run_ids: Sequence[UUID | str], progress: Callable[[int], None] = lambda n: None
) -> None:
    """Re-project runs: legacy rows equal to the consolidated ones, or gone if there is none.
    Their outbox records, dead or alive, are settled by it too."""
    for chunk in _chunks(sorted({str(r) for r in run_ids})):
        with transaction.atomic():
            project_and_settle([UUID(r) for r in chunk])
        progress(len(chunk))


@all_orgs()
def repair_check(
    check: Check,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> CheckResult:
    """Repair everything a check finds in the window, then run it again and return that."""
    ids = offender_ids(check, since, until)
    if ids:
        repair_offenders(check, ids, progress)
    return run_check(check, since, until)


@all_orgs()
def repair_offenders(check: Check, ids: Sequence[str], progress: Callable[[int], None]) -> None:
    if CutoverState.objects.exists():
        raise ValueError(
            "the legacy tables are views since the cutover: nothing to repair "
            "there; `manage.py cutover --rollback` restores them"
        )
    if check.repair == "run":
        reproject_runs(ids, progress)
    elif check.repair == "analytics_day":
        names = ("org_id", "user_id", "date", "request_type", "model")
        for chunk in _chunks(ids):
            with transaction.atomic():
                recompute_token_analytics(
                    [dict(zip(names, json.loads(i), strict=True)) for i in chunk]
                )
            progress(len(chunk))
    elif check.repair == "conversation":
        for chunk in _chunks(ids):
            wanted = Q(pk__in=[])
            for org_id, conversation_id in (json.loads(i) for i in chunk):
                wanted |= Q(org_id=org_id, conversation_id=conversation_id)
            with transaction.atomic():
                recompute_conversations(
                    set(Conversation.objects.filter(wanted).values_list("pk", flat=True))
                )
            progress(len(chunk))
    elif check.repair == "rollup_hour":
        for chunk in _chunks(ids):
            with transaction.atomic():
                recompute_rollups(
                    (UUID(org), parse_datetime(hour)) for org, hour in map(json.loads, chunk)
                )
            progress(len(chunk))
    else:
        raise ValueError(f"{check.name} cannot be repaired here: {check.description}")
