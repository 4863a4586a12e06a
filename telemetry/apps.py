from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def _ensure_roles(sender, using, **kwargs) -> None:
    from telemetry import db_roles

    if using == db_roles.OWNER_DB:  # not `flush` in tests, which runs as the app's role
        db_roles.ensure(connections[using])


class TelemetryConfig(AppConfig):
    name = "telemetry"
    verbose_name = "Telemetry"

    def ready(self) -> None:
        post_migrate.connect(_ensure_roles, sender=self)
