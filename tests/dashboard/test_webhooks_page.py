"""The webhooks settings page: organisation admins add, see and pause their webhooks."""

import pytest
from django.contrib.auth import get_user_model

from telemetry.models import Membership, WebhookAttempt, WebhookDelivery, WebhookSubscription
from tests.conftest import full_run


@pytest.fixture
def admin_member(client, org):
    user = get_user_model().objects.create_user("boss", password="pw-123456")
    Membership.objects.create(user=user, org=org, role="admin")
    client.force_login(user)
    return user


def test_members_who_are_not_admins_are_refused(client, org):
    user = get_user_model().objects.create_user("ana", password="pw-123456")
    Membership.objects.create(user=user, org=org)
    client.force_login(user)
    assert client.get("/settings/webhooks/").status_code == 403


def test_an_admin_adds_a_webhook_and_sees_its_secret_once(client, admin_member, org):
    html = client.get("/settings/webhooks/").content.decode()
    assert "No webhooks yet" in html
    response = client.post(
        "/settings/webhooks/",
        {
            "url": "https://hooks.example.com/lockstep",
            "event_types": ["workflow_failed", "model_response"],
        },
        follow=True,
    )
    subscription = WebhookSubscription.objects.get(org=org)
    assert subscription.secret in response.content.decode()
    assert subscription.event_types == ["workflow_failed", "model_response"]


def test_bad_input_is_explained(client, admin_member):
    html = client.post("/settings/webhooks/", {"url": "not a url"}).content.decode()
    assert "Enter a valid URL" in html and "This field is required" in html
    assert not WebhookSubscription.objects.exists()


def test_failing_endpoints_are_shown_first_and_can_be_paused(client, admin_member, org, ingest):
    good = WebhookSubscription.objects.create(
        org=org, url="https://a.example/ok", event_types=["workflow_completed"]
    )
    bad = WebhookSubscription.objects.create(
        org=org, url="https://b.example/down", event_types=["workflow_completed"]
    )
    ingest(full_run())
    for subscription, code, error in ((good, 204, ""), (bad, 503, "HTTP 503")):
        delivery = WebhookDelivery.objects.get(subscription=subscription)
        WebhookAttempt.objects.create(
            delivery=delivery, status_code=code, error=error, duration_ms=12
        )
    html = client.get("/settings/webhooks/").content.decode()
    assert html.index("b.example/down") < html.index("a.example/ok")
    assert "HTTP 503" in html
    client.post(f"/settings/webhooks/{bad.pk}/toggle/")
    bad.refresh_from_db()
    assert bad.active is False


def test_another_organisations_webhook_cannot_be_touched(client, admin_member, other_org):
    foreign = WebhookSubscription.objects.create(
        org=other_org, url="https://c.example/x", event_types=["workflow_completed"]
    )
    assert client.post(f"/settings/webhooks/{foreign.pk}/toggle/").status_code == 404
    assert "c.example" not in client.get("/settings/webhooks/").content.decode()


def test_the_run_page_lists_its_lifecycle_events(client, admin_member, ingest):
    run = full_run()
    ingest(run)
    html = client.get(f"/runs/{run['run_id']}/").content.decode()
    assert "workflow_completed" in html and "model_response" in html
