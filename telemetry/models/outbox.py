"""The outbox of the asynchronous write mode: runs whose legacy rows are still to be written."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class LegacyOutbox(models.Model):
    """Written in the same transaction as the consolidated rows; removed once the run has been
    projected. Records past the retry limit stay as dead letters until repaired."""

    run_id = models.UUIDField()
    org_id = models.UUIDField()
    created_at = models.DateTimeField(db_default=Now())
    attempts = models.IntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField(db_default=Now())
    last_error = models.TextField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "legacy_outbox"
        ordering = ["id"]
        verbose_name_plural = "legacy outbox"
        indexes = [
            models.Index(fields=["run_id"], name="outbox_run"),
            models.Index(
                fields=["next_attempt_at"], condition=Q(dead_at__isnull=True), name="outbox_due"
            ),
        ]

    def __str__(self) -> str:
        state = "dead" if self.dead_at else f"attempt {self.attempts}"
        return f"run {self.run_id} ({state})"


class CutoverState(models.Model):
    """One row once the legacy tables have been retired behind views (`manage.py cutover`):
    from then on writes go to the consolidated tables only."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    cut_over_at = models.DateTimeField()

    class Meta:
        db_table = "lockstep_cutover"

    def __str__(self) -> str:
        return f"cut over at {self.cut_over_at:%Y-%m-%d %H:%M}"
