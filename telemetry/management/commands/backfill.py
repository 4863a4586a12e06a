from django.core.management.base import BaseCommand
from tqdm import tqdm

from telemetry.backfill import backfill, pending_traces


class Command(BaseCommand):
    help = (
        "Build consolidated runs from legacy rows written by older code (traces without a "
        "run_id), in chunks; resumable and idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chunk", type=int, default=1000, help="traces per transaction")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="do the first chunk and roll it back; report what would happen",
        )

    def handle(self, chunk, dry_run, **options):
        total = pending_traces()
        with tqdm(
            total=total, desc="Backfilling", unit="trace", disable=None, file=self.stderr
        ) as bar:
            report = backfill(chunk, dry_run, bar.update)
        verb = "Would backfill" if dry_run else "Backfilled"
        self.stdout.write(
            f"{verb} {report.traces:,} trace(s)"
            + (
                ""
                if dry_run
                else f" into runs with {report.steps:,} steps and {report.events:,} events"
            )
        )
        if not dry_run:
            self.stdout.write(
                f"Messy rows: {report.traces_without_start:,} trace(s) without a start time, "
                f"{report.steps_without_events:,} step(s) without events."
            )
        if report.usage_rows_without_trace:
            self.stdout.write(
                f"{report.usage_rows_without_trace:,} llm_usage_logs row(s) belong to no trace "
                "and stay legacy-only (their daily analytics are unaffected)."
            )
