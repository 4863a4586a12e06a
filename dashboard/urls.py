from django.urls import path

from dashboard import views

urlpatterns = [
    path("overview/", views.overview, name="overview"),
    path("cost/", views.cost, name="cost"),
    path("latency/", views.latency, name="latency"),
    path("runs/", views.runs, name="runs"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run"),
    path("settings/webhooks/", views.webhooks, name="webhooks"),
    path("settings/webhooks/<int:pk>/toggle/", views.webhook_toggle, name="webhook-toggle"),
    # operators
    path("consistency/", views.consistency, name="consistency"),
    path("consistency/run/", views.run_checks_now, name="consistency-run"),
    path("consistency/repair/<str:name>/", views.repair_confirm, name="consistency-repair-confirm"),
    path("consistency/repair/<str:name>/do/", views.repair, name="consistency-repair"),
    path("consistency/outbox/revive/", views.revive_outbox, name="outbox-revive"),
    path("cutover/", views.cutover_readiness, name="cutover"),
    path("cutover/check/", views.cutover_check, name="cutover-check"),
]
