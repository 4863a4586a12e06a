"""Organisations, their members, and the API keys that decide which organisation a write is for."""

import hashlib
import hmac
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

KEY_PREFIX = "lsk"


def hash_api_key(raw_key: str) -> str:
    # Keys carry 190+ bits of randomness, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(raw_key.encode()).hexdigest()


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "organization"
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin"
        MEMBER = "member"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "organization_member"
        constraints = [models.UniqueConstraint(fields=["user", "org"], name="uniq_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.org} ({self.role})"


class ApiKeyQuerySet(models.QuerySet):
    def find(self, raw_key: str) -> "ApiKey | None":
        """The active key matching `raw_key`, or None. Looks up by prefix, compares hashes."""
        parts = raw_key.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            return None
        key = self.filter(prefix=parts[1], revoked_at__isnull=True).select_related("org").first()
        if key is None or not hmac.compare_digest(key.key_hash, hash_api_key(raw_key)):
            return None
        return key


class ApiKey(models.Model):
    """A bearer key for the ingest and read APIs. Only its SHA-256 is stored."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part, shown in lists.")
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        db_table = "api_key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{KEY_PREFIX}_{self.prefix}_… ({self.org.slug}, {self.name})"

    @classmethod
    def issue(
        cls, org: Organization, name: str = "default", raw_key: str = ""
    ) -> tuple["ApiKey", str]:
        """Create a key and return it with its raw value, which is shown once and never stored."""
        if not raw_key:
            raw_key = f"{KEY_PREFIX}_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
        prefix = raw_key.split("_")[1]
        key = cls.objects.create(org=org, name=name, prefix=prefix, key_hash=hash_api_key(raw_key))
        return key, raw_key

    def touch(self) -> None:
        """Record use, at most once a minute, so reads do not turn into a write per request."""
        now = timezone.now()
        if self.last_used_at is None or (now - self.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now
