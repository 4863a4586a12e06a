from django.core.management.base import BaseCommand
from django.db import connection, transaction
from tqdm import tqdm

from telemetry.rollups import recompute_rollups
from telemetry.scope import all_orgs


class Command(BaseCommand):
    help = "Recompute the hourly rollups from the run tables (all hours, or since a date)."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="only hours from this date on, e.g. 2025-01-14")

    @all_orgs()
    def handle(self, since, **options):
        with connection.cursor() as cur:
            cur.execute(
                "SELECT DISTINCT org_id, date_trunc('hour', coalesce(started_at, created_at)) "
                "FROM user_workflow_run WHERE %s::timestamptz IS NULL "
                "OR coalesce(started_at, created_at) >= %s::timestamptz ORDER BY 2",
                [since, since],
            )
            keys = cur.fetchall()
        with tqdm(
            total=len(keys), desc="Rebuilding rollups", unit="hour", disable=None, file=self.stderr
        ) as bar:
            for start in range(0, len(keys), 48):
                chunk = keys[start : start + 48]
                with transaction.atomic():
                    recompute_rollups(chunk)
                bar.update(len(chunk))
        self.stdout.write(f"Rebuilt {len(keys):,} organisation-hours.")
