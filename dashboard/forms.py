from django import forms

from telemetry.models import EventType, WebhookSubscription


class WebhookForm(forms.ModelForm):
    url = forms.URLField(
        max_length=2000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"size": 60, "placeholder": "https://..."}),
    )
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Which lifecycle events to send.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["url", "event_types"]
