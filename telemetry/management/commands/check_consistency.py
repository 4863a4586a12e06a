import json
import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from telemetry.consistency.checks import BY_NAME, CHECKS
from telemetry.consistency.runner import run_checks

UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_age(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([mhd])", text)
    if not match:
        raise CommandError(f"--since {text!r}: use a number and m, h or d, such as 15m, 1h or 7d")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = "Check that the legacy tables agree with the consolidated ones; exit 1 on an error."

    def add_arguments(self, parser):
        window = parser.add_mutually_exclusive_group()
        window.add_argument("--since", default="1h", help="runs written in the last 15m/1h/7d")
        window.add_argument("--all", action="store_true", help="the whole history")
        parser.add_argument(
            "--check",
            action="append",
            choices=sorted(BY_NAME),
            help="run only these checks (repeatable)",
        )
        parser.add_argument("--json", action="store_true", help="print results as JSON")

    def handle(self, since, all, check, json, **options):
        until = timezone.now()
        start = None if all else until - parse_age(since)
        checks = [BY_NAME[name] for name in check] if check else CHECKS
        with tqdm(
            total=len(checks), desc="Checking", unit="check", disable=None, file=self.stderr
        ) as bar:
            results = run_checks(
                start, None if all else until, checks, progress=lambda c: bar.update(1)
            )
        if json:
            self.stdout.write(_as_json(results))
        else:
            self._table(results, start)
        failed = [r.check_name for r in results if r.severity == "error" and not r.passed]
        if failed:
            raise SystemExit(1)

    def _table(self, results, start) -> None:
        scope = "all history" if start is None else f"runs written since {start:%Y-%m-%d %H:%M} UTC"
        self.stdout.write(f"Consistency checks over {scope}:")
        width = max(len(r.check_name) for r in results)
        for r in results:
            verdict = "ok" if r.passed else ("FAIL" if r.severity == "error" else "warn")
            line = (
                f"  {verdict:<4}  {r.check_name:<{width}}  {r.offenders:>9,} of "
                f"{r.rows_examined:>11,}  {r.duration_ms:>6,} ms"
            )
            if r.sample_ids:
                line += "  e.g. " + ", ".join(r.sample_ids[:3])
            self.stdout.write(line)


def _as_json(results) -> str:
    return json.dumps(
        [
            {
                "check": r.check_name,
                "severity": r.severity,
                "passed": r.passed,
                "rows_examined": r.rows_examined,
                "offenders": r.offenders,
                "sample_ids": r.sample_ids,
                "duration_ms": r.duration_ms,
                "window_start": r.window_start and r.window_start.isoformat(),
                "window_end": r.window_end and r.window_end.isoformat(),
            }
            for r in results
        ],
        indent=2,
    )
