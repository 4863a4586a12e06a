"""Dashboard benchmark: each page's server-side work at 1,000,000 runs / 5,000,000 steps over
30 days, from the rollups and from the base tables, side by side in one run.

Uses the data of bench/consistency.py (generated there if missing), rebuilds the hourly
rollups, then renders every page for the 24 h, 7 d and 30 d ranges through Django's test
client (queries, figures and templates; no network) and prints p95 per page for both paths.
Targets: every page p95 <= 150 ms, and >= 20x faster than the base-table path.

    python bench/dashboard.py              # needs DATABASE_URL; see bench/consistency.py
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

PAGES = ["/overview/", "/cost/", "/latency/", "/runs/"]
CHART_PAGES = PAGES[:3]  # the runs explorer is a drill-down: base tables by design
RANGES = ["24h", "7d", "30d"]


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7, help="requests per page and range")
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        raise SystemExit("set DATABASE_URL to a PostgreSQL server")
    # The consistency benchmark generates (or keeps) the data; one round of checks is cheap.
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "consistency.py"),
            "--runs",
            str(args.runs),
            "--rounds",
            "1",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    os.environ["DATABASE_URL"] = base_url.rsplit("/", 1)[0] + "/lockstep_bench_checks"

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from telemetry.models import Membership, Organization, PeopleRollup
    from telemetry.scope import all_orgs

    settings.ALLOWED_HOSTS = ["*"]
    org = Organization.objects.get(slug="bench")
    with all_orgs():
        built = PeopleRollup.objects.filter(org_id=org.id).exists()
    if not built:
        call_command("rebuild_rollups")
    user, _ = get_user_model().objects.get_or_create(username="bench-viewer")
    Membership.objects.get_or_create(user=user, org=org)
    client = Client()
    client.force_login(user)

    def measure(source: str | None, repeat: int) -> dict[str, list[float]]:
        settings.LOCKSTEP_DASHBOARD_SOURCE = source
        times: dict[str, list[float]] = {page: [] for page in PAGES}
        for page in PAGES:
            for range_ in RANGES:
                for _ in range(repeat):
                    started = time.perf_counter()
                    response = client.get(page, {"range": range_})
                    times[page].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, (page, response.status_code)
        return times

    measure(None, 1)  # warm up caches and connections
    fast = measure(None, args.repeat)
    slow = measure("base", max(1, args.repeat // 3))
    print(
        f"\n{args.runs:,} runs over 30 days; ranges {', '.join(RANGES)}; "
        f"{args.repeat} requests per page and range (base path: {max(1, args.repeat // 3)})"
    )
    print(f"{'page':<12} {'p95 rollups':>12} {'median':>9} {'p95 base':>10} {'speed-up':>9}")
    worst_p95, worst_ratio = 0.0, float("inf")
    for page in PAGES:
        a, b = p95(fast[page]), p95(slow[page])
        worst_p95 = max(worst_p95, a)
        if page in CHART_PAGES:
            worst_ratio = min(worst_ratio, b / a)
        print(
            f"{page:<12} {a:>9.1f} ms {statistics.median(fast[page]):>6.1f} ms "
            f"{b:>7.0f} ms {b / a:>8.1f}x"
        )
    print(
        f"\nworst page p95: {worst_p95:.1f} ms (target <= 150 ms); "
        f"smallest speed-up over the base tables: {worst_ratio:.1f}x (target >= 20x)"
    )


if __name__ == "__main__":
    main()
