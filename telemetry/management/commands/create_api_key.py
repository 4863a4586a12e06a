from django.core.management.base import BaseCommand

from telemetry.models import ApiKey, Organization


class Command(BaseCommand):
    help = "Create an API key for an organisation (created if needed); prints the key last."

    def add_arguments(self, parser):
        parser.add_argument("org_slug")
        parser.add_argument("--name", default="default", help="A label for the key.")

    def handle(self, org_slug, name, **options):
        org, created = Organization.objects.get_or_create(
            slug=org_slug, defaults={"name": org_slug.replace("-", " ").title()}
        )
        if created:
            self.stderr.write(f"Created organisation {org.slug}.")
        _, raw_key = ApiKey.issue(org, name=name)
        self.stderr.write(
            "The key is shown once; store it now. Use it as 'Authorization: Bearer <key>'."
        )
        self.stdout.write(raw_key)
