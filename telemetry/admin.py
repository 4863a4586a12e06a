"""The operators' view. Telemetry rows are read-only here: a hand edit to a consolidated row
would bypass the projection and break parity with the legacy tables."""

import json

from django import forms
from django.contrib import admin
from django.db import models
from django.utils.html import format_html

from telemetry import models as m


def pretty_json(value) -> str:
    if value in (None, "", [], {}):
        return "—"
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


class PrettyJSONFormField(forms.JSONField):
    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


EDITABLE_JSON = {
    models.JSONField: {
        "form_class": PrettyJSONFormField,
        "widget": forms.Textarea(attrs={"rows": 12, "style": "font-family: monospace"}),
    }
}


class ReadOnlyAdmin(admin.ModelAdmin):
    """Every column shown, JSON pretty-printed and escaped, nothing editable."""

    show_full_result_count = False
    list_per_page = 50

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        self._json = {f.name for f in model._meta.fields if isinstance(f, models.JSONField)}
        for name in self._json:
            setattr(self, f"{name}_json", self._renderer(name))

    @staticmethod
    def _renderer(name):
        def render(obj):
            return pretty_json(getattr(obj, name))

        render.short_description = name.replace("_", " ")
        return render

    def get_fields(self, request, obj=None):
        names = [f.name for f in self.model._meta.fields]
        return [f"{n}_json" if n in self._json else n for n in names]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StepInline(admin.TabularInline):
    model = m.WorkflowRunStep
    fields = [
        "step_number",
        "name",
        "kind",
        "status",
        "started_at",
        "duration_ms",
        "llm_model",
        "total_tokens",
        "cost_usd",
        "cost_source",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["step_number"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(m.WorkflowRun)
class WorkflowRunAdmin(ReadOnlyAdmin):
    list_display = [
        "run_id",
        "workflow_id",
        "status",
        "org",
        "user_id",
        "started_at",
        "duration_ms",
        "llm_model",
        "llm_tokens_used",
        "cost_usd",
        "step_count",
    ]
    list_filter = ["status", "channel", "org", "workflow_id"]
    search_fields = ["=run_id", "workflow_id", "=external_id", "=user_id", "=conversation_id"]
    date_hierarchy = "started_at"
    inlines = [StepInline]
    list_select_related = ["org"]


@admin.register(m.WorkflowRunStep)
class WorkflowRunStepAdmin(ReadOnlyAdmin):
    list_display = [
        "run",
        "step_number",
        "name",
        "kind",
        "status",
        "started_at",
        "duration_ms",
        "llm_model",
        "total_tokens",
        "cost_usd",
        "cost_source",
    ]
    list_filter = ["kind", "status", "cost_source", "llm_provider"]
    search_fields = ["=run__run_id", "name", "node_id", "llm_model"]
    date_hierarchy = "started_at"


@admin.register(m.WorkflowTrace)
class WorkflowTraceAdmin(ReadOnlyAdmin):
    list_display = [
        "trace_id",
        "run_id",
        "workflow_id",
        "status",
        "user_id",
        "started_at",
        "duration_ms",
    ]
    list_filter = ["status", "channel"]
    search_fields = ["=run_id", "workflow_id", "=external_id"]
    date_hierarchy = "started_at"


@admin.register(m.WorkflowStep)
class WorkflowStepAdmin(ReadOnlyAdmin):
    list_display = [
        "step_id",
        "trace_id",
        "run_id",
        "step_number",
        "name",
        "step_type",
        "status",
        "duration_ms",
    ]
    list_filter = ["step_type", "status"]
    search_fields = ["=run_id", "name"]


@admin.register(m.WorkflowEvent)
class WorkflowEventAdmin(ReadOnlyAdmin):
    list_display = [
        "event_id",
        "trace_id",
        "run_id",
        "step_number",
        "position",
        "event_type",
        "event_timestamp",
    ]
    list_filter = ["event_type"]
    search_fields = ["=run_id", "event_type"]


@admin.register(m.WorkflowTraceScreenshot)
class WorkflowTraceScreenshotAdmin(ReadOnlyAdmin):
    list_display = [
        "screenshot_id",
        "run_id",
        "step_number",
        "position",
        "action",
        "url",
        "element_found",
        "confidence",
    ]
    search_fields = ["=run_id", "action", "url"]


@admin.register(m.WorkflowTraceContext)
class WorkflowTraceContextAdmin(ReadOnlyAdmin):
    list_display = ["id", "trace_id", "run_id", "context_key", "context_value"]
    search_fields = ["=run_id", "context_key"]


@admin.register(m.WorkflowTraceEndpoint)
class WorkflowTraceEndpointAdmin(ReadOnlyAdmin):
    list_display = ["id", "trace_id", "run_id", "position", "endpoint"]
    search_fields = ["=run_id", "endpoint"]


@admin.register(m.LlmUsageLog)
class LlmUsageLogAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "provider",
        "model",
        "request_type",
        "user_id",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cost",
        "success",
    ]
    list_filter = ["provider", "model", "success"]
    search_fields = ["=run_id", "model", "=user_id", "request_type"]
    date_hierarchy = "created_at"


@admin.register(m.TokenUsageAnalytics)
class TokenUsageAnalyticsAdmin(ReadOnlyAdmin):
    list_display = [
        "date",
        "request_type",
        "model",
        "user_id",
        "request_count",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens_used",
        "total_cost",
    ]
    list_filter = ["model", "request_type"]
    search_fields = ["=user_id", "model", "request_type"]
    date_hierarchy = "date"


@admin.register(m.Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = [
        "conversation_id",
        "user_id",
        "message_count",
        "total_tokens",
        "total_cost",
        "updated_at",
    ]
    search_fields = ["=conversation_id", "=user_id", "title"]


@admin.register(m.Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "conversation",
        "role",
        "model_used",
        "provider_used",
        "total_tokens",
        "cost",
        "response_time_ms",
        "created_at",
    ]
    list_filter = ["role", "provider_used", "model_used"]
    search_fields = ["=run_id", "content"]
    list_select_related = ["conversation"]


class MembershipInline(admin.TabularInline):
    model = m.Membership
    extra = 0
    autocomplete_fields = ["user"]


class ApiKeyInline(admin.TabularInline):
    model = m.ApiKey
    fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["name", "prefix", "created_at", "last_used_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # keys are issued by `manage.py create_api_key`, which shows them once


@admin.register(m.Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, ApiKeyInline]


@admin.register(m.ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "org", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["org"]
    fields = ["org", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["org", "name", "prefix", "created_at", "last_used_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        from django.utils import timezone

        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).")


@admin.register(m.WorkflowConfig)
class WorkflowConfigAdmin(admin.ModelAdmin):
    list_display = ["workflow_id", "config_key", "org", "is_active", "updated_at"]
    list_filter = ["is_active", "org"]
    search_fields = ["workflow_id", "config_key"]
    formfield_overrides = EDITABLE_JSON


@admin.register(m.WorkflowCacheState)
class WorkflowCacheStateAdmin(admin.ModelAdmin):
    list_display = ["workflow_id", "cache_key", "org", "expires_at", "updated_at"]
    list_filter = ["org"]
    search_fields = ["workflow_id", "cache_key"]
    formfield_overrides = EDITABLE_JSON


@admin.register(m.CheckResult)
class CheckResultAdmin(ReadOnlyAdmin):
    list_display = [
        "checked_at",
        "check_name",
        "severity",
        "offenders",
        "rows_examined",
        "window_start",
        "window_end",
        "duration_ms",
    ]
    list_filter = ["check_name", "severity"]
    date_hierarchy = "checked_at"


@admin.register(m.LegacyOutbox)
class LegacyOutboxAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "run_id",
        "created_at",
        "attempts",
        "next_attempt_at",
        "dead_at",
        "last_error",
    ]
    list_filter = [("dead_at", admin.EmptyFieldListFilter)]
    search_fields = ["=run_id"]
    actions = ["retry"]

    def has_change_permission(self, request, obj=None):
        return obj is None and request.user.is_staff  # the action, not the form

    @admin.action(description="Retry the selected records now")
    def retry(self, request, queryset):
        from django.utils import timezone

        count = queryset.update(dead_at=None, attempts=0, next_attempt_at=timezone.now())
        self.message_user(request, f"{count} record(s) will be retried by the next drain.")


@admin.register(m.WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["url", "org", "event_types", "active", "created_at"]
    list_filter = ["active", "org"]
    search_fields = ["url"]


@admin.register(m.WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "event",
        "subscription",
        "state",
        "attempts",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["state"]
    list_select_related = ["event", "subscription"]


@admin.register(m.RunEvent)
class RunEventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "type", "run_id", "step_number", "org"]
    list_filter = ["type"]
    search_fields = ["=run_id"]
    date_hierarchy = "occurred_at"
