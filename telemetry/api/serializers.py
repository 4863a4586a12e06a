"""Translate runs, steps and legacy rows to JSON, and query parameters to filters."""

import json

from django.db import models
from rest_framework import serializers

from telemetry.models import WorkflowRun, WorkflowRunStep
from telemetry.selectors import RunFilters


class StepSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkflowRunStep
        exclude = ["run", "org"]


class RunSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.__str__", default=None)

    class Meta:
        model = WorkflowRun
        exclude = ["org"]


class RunSummarySerializer(RunSerializer):
    class Meta(RunSerializer.Meta):
        exclude = ["org", "llm_prompt", "llm_response", "config_snapshot", "error_details"]


def legacy_serializer(model: type[models.Model]) -> type[serializers.ModelSerializer]:
    """A plain serializer of every column, for showing legacy rows beside their run."""
    meta = type("Meta", (), {"model": model, "fields": "__all__"})
    return type(f"{model.__name__}Serializer", (serializers.ModelSerializer,), {"Meta": meta})


class RunFiltersSerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False, help_text="started_at >= since")
    until = serializers.DateTimeField(required=False, help_text="started_at < until")
    status = serializers.ChoiceField(
        choices=WorkflowRun._meta.get_field("status").choices, required=False
    )
    workflow_id = serializers.CharField(required=False)
    model = serializers.CharField(required=False, help_text="runs with an LLM call to this model")
    user_id = serializers.CharField(required=False)
    conversation_id = serializers.CharField(required=False)
    external_id = serializers.CharField(required=False)
    context = serializers.CharField(
        required=False, help_text='JSON the run context must contain, e.g. {"correlation_id": "x"}'
    )

    def validate_context(self, value: str) -> dict:
        try:
            parsed = json.loads(value)
        except ValueError:
            raise serializers.ValidationError(
                'must be a JSON object, e.g. {"correlation_id": "xyz789"}'
            ) from None
        if not isinstance(parsed, dict):
            raise serializers.ValidationError('must be a JSON object, e.g. {"key": "value"}')
        return parsed

    def to_filters(self) -> RunFilters:
        return RunFilters(**self.validated_data)
