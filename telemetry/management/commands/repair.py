from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from telemetry.consistency.checks import BY_NAME, CHECKS
from telemetry.consistency.repair import repair_offenders, reproject_runs
from telemetry.consistency.runner import offender_ids, run_check
from telemetry.management.commands.check_consistency import parse_age

# Repairs that delete legacy rows ask first.
DELETES = {"trace_without_run"}


class Command(BaseCommand):
    help = (
        "Re-project offending runs from the consolidated tables, remove orphaned legacy rows "
        "(after showing them), recompute derived totals; then check again. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="append",
            choices=sorted(BY_NAME),
            help="repair what this check finds (repeatable; default: all)",
        )
        parser.add_argument(
            "--run", action="append", metavar="RUN_ID", help="re-project these runs (repeatable)"
        )
        parser.add_argument("--since", help="only offenders written in the last 15m/1h/7d")
        parser.add_argument(
            "--yes", action="store_true", help="delete orphaned legacy rows without asking"
        )

    def handle(self, check, run, since, yes, **options):
        if run:
            with self._bar(len(run), "Re-projecting") as bar:
                reproject_runs(run, bar.update)
            self.stdout.write(f"Re-projected {len(run):,} run(s).")
            if not check:
                return
        until = timezone.now()
        start = until - parse_age(since) if since else None
        checks = [BY_NAME[n] for n in check] if check else [c for c in CHECKS if c.repair]
        for c in checks:
            if c.repair is None:
                raise CommandError(f"{c.name} is a data-quality check; {c.description}")
            ids = offender_ids(c, start, None if start is None else until)
            if not ids:
                self.stdout.write(f"  ok    {c.name}: nothing to repair")
                continue
            self.stdout.write(f"  {c.name}: {len(ids):,} offender(s), e.g. {', '.join(ids[:3])}")
            if c.name in DELETES and not self._confirmed(c, ids, yes):
                self.stdout.write("  skipped: nothing was deleted")
                continue
            with self._bar(len(ids), f"Repairing {c.name}") as bar:
                repair_offenders(c, ids, bar.update)
            after = run_check(c, start, None if start is None else until)
            verdict = "clean" if after.passed else f"{after.offenders:,} offender(s) remain"
            self.stdout.write(f"  then  {c.name}: {verdict}")

    def _bar(self, total: int, desc: str):
        return tqdm(total=total, desc=desc, unit="item", disable=None, file=self.stderr)

    def _confirmed(self, check, ids, yes) -> bool:
        self.stdout.write(
            "  These run ids have legacy rows but no consolidated run; their "
            "legacy rows will be deleted:"
        )
        for run_id in ids[:50]:
            self.stdout.write(f"    {run_id}")
        if len(ids) > 50:
            self.stdout.write(f"    ... and {len(ids) - 50:,} more")
        if yes:
            return True
        try:
            answer = input("  Delete them? [y/N] ")
        except EOFError:
            answer = ""
        return answer.strip().lower() in ("y", "yes")
