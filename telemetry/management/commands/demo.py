from itertools import islice

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from tqdm import tqdm

from telemetry.demo import demo_runs
from telemetry.ingest.writer import ingest_runs
from telemetry.models import ApiKey, Membership, Organization
from telemetry.models.tenancy import hash_api_key


class Command(BaseCommand):
    help = "Load demo data through the ingest path (idempotent): an org, a login, an API key, runs."

    def add_arguments(self, parser):
        parser.add_argument("--runs", type=int, default=3000)
        parser.add_argument("--days", type=int, default=14)
        parser.add_argument("--batch", type=int, default=200)

    def handle(self, runs, days, batch, **options):
        org, _ = Organization.objects.get_or_create(slug="demo", defaults={"name": "Demo Co"})
        user, created = get_user_model().objects.get_or_create(
            username="demo", defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password("demo")
            user.save()
        Membership.objects.get_or_create(user=user, org=org, defaults={"role": "admin"})
        raw_key = settings.LOCKSTEP_DEMO_API_KEY
        key = ApiKey.objects.filter(key_hash=hash_api_key(raw_key)).first()
        if key is None:
            key, _ = ApiKey.issue(org, name="demo", raw_key=raw_key)

        counts: dict[str, int] = {}
        with tqdm(total=runs, desc="Loading demo runs", unit="run", disable=None) as bar:
            documents = demo_runs(runs, days)
            while chunk := list(islice(documents, batch)):
                for result in ingest_runs(org, key, chunk):
                    counts[result.status] = counts.get(result.status, 0) + 1
                bar.update(len(chunk))
        summary = ", ".join(f"{n:,} {status}" for status, n in sorted(counts.items()))
        self.stdout.write(f"Demo runs: {summary}.")
        self.stdout.write("Log in at http://127.0.0.1:8000/ as demo / demo")
        self.stdout.write(f"API key: {raw_key}")
