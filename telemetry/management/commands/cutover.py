from django.core.management.base import BaseCommand, CommandError

from telemetry import cutover


class Command(BaseCommand):
    help = (
        "Retire the legacy tables (renamed *_retired, never dropped) behind views with their "
        "names over the consolidated tables; --check reports readiness; --rollback undoes it."
    )

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--check", action="store_true", help="report readiness only")
        mode.add_argument("--rollback", action="store_true", help="restore the legacy tables")

    def handle(self, check, rollback, **options):
        if rollback:
            try:
                count = cutover.rollback()
            except ValueError as exc:
                raise CommandError(f"Nothing to roll back: {exc}.") from None
            self.stdout.write(
                f"Legacy tables restored; {count:,} run(s) written since the "
                "cutover were projected into them."
            )
            return
        state = cutover.readiness()
        if state.cut_over_at:
            self.stdout.write(f"Already cut over at {state.cut_over_at:%Y-%m-%d %H:%M} UTC.")
            return
        self.stdout.write("Cutover readiness:")
        self._line(
            not state.failing_checks,
            "consistency of the whole history",
            ", ".join(state.failing_checks) or "every error check clean",
        )
        self._line(
            not state.outbox_pending,
            "legacy outbox empty",
            f"{state.outbox_pending:,} record(s) waiting",
        )
        self._line(
            not state.traces_not_backfilled,
            "every legacy trace backfilled",
            f"{state.traces_not_backfilled:,} trace(s) without a run: run backfill",
        )
        self.stdout.write(
            "  Reads of the legacy tables since statistics were reset "
            "(old readers still using them):"
        )
        for table in cutover.LEGACY_TABLES:
            self.stdout.write(f"    {table:<28} {state.reads.get(table, 0):>12,} scans")
        self.stdout.write(
            "  What will change: each table above is renamed <table>_retired "
            "and a view with its name and columns reads the consolidated "
            "tables; writes then go to the consolidated tables only."
        )
        if check:
            return
        if not state.ready:
            raise CommandError("Not ready: fix what is marked above, then run cutover again.")
        cutover.cutover()
        self.stdout.write("Cut over. `python manage.py cutover --rollback` restores the tables.")

    def _line(self, ok: bool, what: str, detail: str) -> None:
        self.stdout.write(f"  {'ok  ' if ok else 'FAIL'}  {what}: {detail}")
