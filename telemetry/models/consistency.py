"""The stored results of consistency check runs, charted over time and listed by offender."""

from django.db import models


class CheckResult(models.Model):
    """One check run over one window: how much it examined, how much failed, and a sample."""

    check_name = models.CharField(max_length=100)
    severity = models.CharField(max_length=20)
    checked_at = models.DateTimeField(auto_now_add=True)
    window_start = models.DateTimeField(null=True, blank=True, help_text="Empty: all history.")
    window_end = models.DateTimeField(null=True, blank=True)
    rows_examined = models.BigIntegerField()
    offenders = models.BigIntegerField()
    sample_ids = models.JSONField(default=list, help_text="Up to 20 offending ids.")
    duration_ms = models.IntegerField()

    class Meta:
        db_table = "consistency_check_result"
        ordering = ["-checked_at"]
        indexes = [models.Index(fields=["check_name", "checked_at"], name="check_result_time")]

    def __str__(self) -> str:
        verdict = "ok" if self.offenders == 0 else f"{self.offenders} offenders"
        return f"{self.check_name} at {self.checked_at:%Y-%m-%d %H:%M}: {verdict}"

    @property
    def passed(self) -> bool:
        return self.offenders == 0
