import time

from django.core.management.base import BaseCommand

from telemetry.webhooks import deliver_due


class Command(BaseCommand):
    help = "Deliver due webhook events now (Celery beat does this every 10 s when it runs)."

    def add_arguments(self, parser):
        parser.add_argument("--watch", action="store_true", help="keep delivering every 10 s")

    def handle(self, watch, **options):
        while True:
            counts = deliver_due()
            self.stdout.write(", ".join(f"{n} {state}" for state, n in counts.items()))
            if not watch:
                return
            time.sleep(10)
